package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/configfile"
)

// validateReport is the JSON output of `validate --format json`. The schema is stable: fields
// are only ever added.
type validateReport struct {
	Valid bool           `json:"valid"` // every file is valid
	Files []validateFile `json:"files"`
}

// kindAuto is --kind auto: configfile.Detect tells what the file holds.
const kindAuto configfile.Kind = "auto"

type validateFile struct {
	File string `json:"file"`
	// Kind is "config" (an s3cors configuration) or "bucket-cors" (a bare bucket CORS
	// document).
	Kind configfile.Kind `json:"kind"`
	// Form, for a bucket CORS document, is "xml", "json" (AWS CLI/SDK) or "console".
	Form     bucketForm      `json:"form,omitempty"`
	Valid    bool            `json:"valid"`
	Problems []problemReport `json:"problems"`
	// Error is set when the file could not be read; Problems is then empty.
	Error string `json:"error,omitempty"`

	size string // for the text output: "6 buckets", "2 rules"
}

type problemReport struct {
	Path    string `json:"path"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  string `json:"detail,omitempty"`
}

func newValidateCmd() *cobra.Command {
	var format, kind string
	cmd := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check s3cors configurations or bucket CORS documents as S3 would",
		Long: `Validate checks each FILE and prints every problem, with its path and S3's own error code
and message (what PutBucketCors would answer), or InvalidConfiguration for s3cors-level faults.

A FILE is either a whole s3cors configuration (JSON or YAML) or a bare bucket CORS document in
any of S3's forms: XML (<CORSConfiguration>), AWS CLI/SDK JSON ({"CORSRules": [...]}) or S3
console JSON ([...]). The kind is detected; --kind forces it.

Exit codes: 0 every file is valid, 1 a file is invalid, 2 usage error or unreadable file.

--format json prints one document, for CI:

  {"valid": false,
   "files": [{"file": "cors.json", "kind": "config", "valid": false,
              "problems": [{"path": "buckets[\"website\"].CORSRules[0].AllowedMethods[0]",
                            "code": "InvalidRequest",
                            "message": "Found unsupported HTTP method in CORS config. Unsupported method is PATCH"}]}]}

kind is "config" or "bucket-cors"; form ("xml", "json", "console") is set for bucket-cors;
a problem may carry "detail", s3cors's explanation where S3's message is generic; "error" is
set when a file could not be read.`,
		Example: `  s3cors validate testdata/demo/config.json
  s3cors validate --format json cors.xml website-cors.json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("validate: want at least one FILE")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := oneOf("format", format, "text", "json"); err != nil {
				return err
			}
			if err := oneOf("kind", kind, "auto", "config", "bucket-cors"); err != nil {
				return err
			}
			rep := validateReport{Valid: true, Files: []validateFile{}}
			code := exitOK
			for _, path := range args {
				f := validateOne(path, configfile.Kind(kind))
				if f.Error != "" {
					code = exitUsage
				} else if !f.Valid && code == exitOK {
					code = exitFailure
				}
				rep.Valid = rep.Valid && f.Valid
				rep.Files = append(rep.Files, f)
			}
			out := cmd.OutOrStdout()
			if format == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				enc.SetEscapeHTML(false)
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else if err := writeValidateText(out, cmd.ErrOrStderr(), rep); err != nil {
				return err
			}
			if code != exitOK {
				return &exitError{code: code}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	cmd.Flags().StringVar(&kind, "kind", "auto", "what the files hold: auto, config or bucket-cors")
	return cmd
}

func validateOne(path string, kind configfile.Kind) validateFile {
	f := validateFile{File: path, Problems: []problemReport{}}
	data, err := os.ReadFile(path)
	if err != nil {
		f.Error = err.Error()
		return f
	}
	// --kind config on a bucket document the bucket parser reads: the evaluator's finding,
	// and how to validate it as what it is.
	var forcedBare string
	if kind == configfile.KindConfig && configfile.Detect(data) == configfile.KindBucketCORS {
		forcedBare = configfile.BareDocument(data, nil)
	}
	if kind == kindAuto {
		kind = configfile.Detect(data)
	}
	f.Kind = kind
	switch {
	case configfile.Blank(data) && kind == configfile.KindBucketCORS:
		err = errors.New(msgEmptyBucketDocument)
	case forcedBare != "":
		err = errors.New(forcedBare + ", or validate it as a bucket document (--kind auto)")
	case kind == configfile.KindBucketCORS:
		var b *evaluator.BucketCORS
		b, err = evaluator.ParseBucketCORS(data)
		f.Form = formOf(data)
		if b != nil {
			f.size = plural(len(b.Rules), "rule")
		}
	default:
		var doc []byte
		var cfg *evaluator.Config
		doc, err = configJSON(path, data)
		if err == nil {
			cfg, err = evaluator.ParseConfig(doc)
		}
		if cfg != nil {
			f.size = plural(len(cfg.Buckets), "bucket")
		}
	}
	f.Valid = err == nil
	var verr *evaluator.ValidationError
	switch {
	case err == nil:
	case errors.As(err, &verr):
		for _, p := range verr.Problems {
			f.Problems = append(f.Problems, problemReport{Path: p.Path, Code: p.Code, Message: p.Message, Detail: p.Detail})
		}
	default:
		f.Problems = append(f.Problems, problemReport{Code: "InvalidConfiguration", Message: err.Error()})
	}
	return f
}

// formOf names the form of a bucket CORS document by its first character, as
// evaluator.ParseBucketCORS tells them apart; it works for invalid documents too.
func formOf(data []byte) bucketForm {
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	if len(trimmed) == 0 {
		return ""
	}
	switch trimmed[0] {
	case '<':
		return formXML
	case '[':
		return formConsole
	case '{':
		return formJSON
	}
	return ""
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func writeValidateText(out, errOut io.Writer, rep validateReport) error {
	var b strings.Builder
	for _, f := range rep.Files {
		if f.Error != "" {
			_, _ = fmt.Fprintf(errOut, "%s: cannot read: %s\n", f.File, f.Error)
			continue
		}
		what := "s3cors configuration"
		if f.Kind == configfile.KindBucketCORS {
			what = "bucket CORS"
			if f.Form != "" {
				what += ", " + f.Form.name()
			}
		}
		if f.Valid {
			fmt.Fprintf(&b, "%s: valid (%s, %s)\n", f.File, what, f.size)
			continue
		}
		noun := "problems"
		if len(f.Problems) == 1 {
			noun = "problem"
		}
		fmt.Fprintf(&b, "%s: invalid (%s), %d %s:\n", f.File, what, len(f.Problems), noun)
		for _, p := range f.Problems {
			s := evaluator.Problem{Path: p.Path, Code: p.Code, Message: p.Message, Detail: p.Detail}.String()
			fmt.Fprintf(&b, "  %s\n", s)
		}
	}
	_, err := io.WriteString(out, b.String())
	return err
}

// msgEmptyBucketDocument is what validate and convert say of an empty file read as a bucket
// CORS document (an empty configuration is the evaluator's to describe).
const msgEmptyBucketDocument = `the file is empty: a bucket CORS document is {"CORSRules": [...]}, [...] or <CORSConfiguration> XML`
