package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/configfile"
)

func newConvertCmd() *cobra.Command {
	var to, bucket string
	cmd := &cobra.Command{
		Use:   "convert FILE --to xml|json|console",
		Short: "Convert a bucket CORS document between S3's XML, AWS JSON and console JSON forms",
		Long: `Convert reads a bucket CORS document in any of S3's three forms and prints it in the form --to
names, losslessly: the members that were set, in the order and case written, as GetBucketCors
renders them.

  xml      <CORSConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">... (the S3 API)
  json     {"CORSRules": [...]} (AWS CLI, SDKs: aws s3api put-bucket-cors --cors-configuration)
  console  [...] (the S3 console's CORS editor)

With --bucket, FILE is an s3cors configuration and that bucket's rules are converted.
The document is validated first; an invalid one is reported as validate would, with exit code 1.`,
		Example: `  s3cors convert cors.xml --to json
  s3cors convert testdata/demo/config.json --bucket website --to xml`,
		Args: exactArgs(1, "one FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := oneOf("to", to, formNames()...); err != nil {
				return err
			}
			path := args[0]
			var b *evaluator.BucketCORS
			data, err := os.ReadFile(path)
			if err != nil {
				// An unreadable file is a failure, not a usage error: the command line was
				// right. The path is quoted once, so *fs.PathError's own copy is dropped.
				var perr *fs.PathError
				if errors.As(err, &perr) {
					err = perr.Err
				}
				return fmt.Errorf("convert: reading %q: %w", path, err)
			}
			if configfile.Blank(data) && bucket == "" {
				return &exitError{code: exitFailure, err: fmt.Errorf("convert: %q: %s", path, msgEmptyBucketDocument)}
			}
			if bucket != "" {
				if configfile.Detect(data) == configfile.KindBucketCORS {
					return usageErrorf("convert: %q is a bucket CORS document (%s), not an s3cors configuration: drop --bucket to convert it", path, formOf(data).name())
				}
				pol, _, err := loadPolicy(path)
				if err != nil {
					return &exitError{code: exitFailure, err: err}
				}
				var ok bool
				b, ok = pol.Config().Buckets[bucket]
				if !ok {
					return fmt.Errorf("convert: bucket %q is not in %q", bucket, path)
				}
				if b == nil || b.Rules == nil {
					return fmt.Errorf("convert: bucket %q has no CORS configuration (null) in %q", bucket, path)
				}
			} else {
				if err := needsBucket(path, data); err != nil {
					return err
				}
				b, err = evaluator.ParseBucketCORS(data)
				var verr *evaluator.ValidationError
				if errors.As(err, &verr) {
					w := cmd.ErrOrStderr()
					_, _ = fmt.Fprintf(w, "%s: invalid bucket CORS document:\n", path)
					for _, p := range verr.Problems {
						_, _ = fmt.Fprintf(w, "  %s\n", p)
					}
					return &exitError{code: exitFailure}
				} else if err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
			}
			out := bucketForm(to).render(b)
			if !bytes.HasSuffix(out, []byte("\n")) {
				out = append(out, '\n')
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "target form: xml, json or console")
	cmd.Flags().StringVar(&bucket, "bucket", "", "convert this bucket of an s3cors configuration FILE")
	return cmd
}

// needsBucket refuses an s3cors configuration given without --bucket, naming the buckets it
// lists, rather than reporting its keys as unknown members of a bucket CORS document.
func needsBucket(path string, data []byte) error {
	if configfile.Detect(data) != configfile.KindConfig {
		return nil
	}
	// A document not readable as a configuration either is left to the bucket parser, which
	// says why.
	names, ok := configBuckets(readableConfig(path, data))
	if !ok {
		return nil
	}
	const maxNames = 10
	list := "it lists no buckets"
	if len(names) > 0 {
		shown := names[:min(len(names), maxNames)]
		list = "buckets: " + strings.Join(shown, ", ")
		if len(names) > maxNames {
			list += fmt.Sprintf(" and %d more", len(names)-maxNames)
		}
	}
	return usageErrorf("convert: %q is an s3cors configuration: pass --bucket NAME to convert one of its buckets (%s)", path, list)
}

// readableConfig returns data as configuration JSON, or nil when it cannot be read as one.
func readableConfig(path string, data []byte) []byte {
	doc, err := configJSON(path, data)
	if err != nil {
		return nil
	}
	return doc
}

// bucketForm is one of the three forms of a bucket CORS document (--to, validate's "form").
type bucketForm string

const (
	formXML     bucketForm = "xml"     // <CORSConfiguration> (the S3 API)
	formJSON    bucketForm = "json"    // {"CORSRules": [...]} (the AWS CLI, the SDKs)
	formConsole bucketForm = "console" // [...] (the S3 console's CORS editor)
)

// bucketForms lists the forms in the order the help names them.
var bucketForms = []bucketForm{formXML, formJSON, formConsole}

func formNames() []string {
	names := make([]string, len(bucketForms))
	for i, f := range bucketForms {
		names[i] = string(f)
	}
	return names
}

// name is how text output names the form.
func (f bucketForm) name() string {
	switch f {
	case formXML:
		return "S3 XML"
	case formJSON:
		return "AWS JSON"
	case formConsole:
		return "console JSON"
	}
	return ""
}

// render writes b in the form f.
func (f bucketForm) render(b *evaluator.BucketCORS) []byte {
	switch f {
	case formXML:
		return b.XML()
	case formJSON:
		return b.JSON()
	case formConsole:
		return b.ConsoleJSON()
	}
	return nil
}
