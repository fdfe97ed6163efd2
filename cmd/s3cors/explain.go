package main

import (
	"encoding/json"
	"errors"

	"github.com/spf13/cobra"

	"github.com/s3cors/s3cors/internal/explain"
)

func newExplainCmd() *cobra.Command {
	var (
		configPath, format string
		q                  explain.Query
		origin, reqMethod  string
		reqHeaders         string
	)
	cmd := &cobra.Command{
		Use:   "explain --config FILE (--url URL | --bucket B [--key K]) --method M [--origin O] [--request-method RM] [--request-headers H,...]",
		Short: "Show why S3 would allow or deny one request, rule by rule, and its exact response",
		Long: `Explain evaluates one request against a configuration as S3 would: for each CORS rule of the
bucket, in order, whether the origin, the method and every requested header matched (and which
part failed), the verdict, and the exact response S3 gives (status, headers, XML body) or the
CORS headers it adds to the store's answer.

The request is given by --url (virtual-hosted or path style; the Host is taken from it) or by
--bucket and --key (addressed as the configuration's addressing says). A header flag that is not
given means the header is absent; --origin "" sends an empty Origin.

--format json prints a stable document: request, bucket, key, rules_from, preflight,
checked_method, rules[{index, id, used, origin, method, headers: {matched, allowed, failed}}],
outcome (reply, decorate, forward, pass), reason, rule, allowed, summary, notes (what the
request may not mean, e.g. a lower-case "options" is not a preflight) and
response {status, headers, body, note}. The gateway's /debug/s3cors/explain serves the same.`,
		Example: `  s3cors explain --config testdata/demo/config.json --bucket website --key notes/a.txt \
      --method OPTIONS --origin http://127.0.0.1:8081 --request-method PUT \
      --request-headers x-amz-meta-author
  s3cors explain --config cors.yaml --url http://website.s3.localhost:8080/index.html \
      --method GET --origin https://example.com --format json`,
		Args: exactArgs(0, "no arguments (flags only)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := oneOf("format", format, "text", "json"); err != nil {
				return err
			}
			if configPath == "" {
				return usageErrorf("explain: --config is required")
			}
			flags := cmd.Flags()
			if !flags.Changed("method") {
				return usageErrorf("explain: --method is required")
			}
			if !flags.Changed("url") && !flags.Changed("bucket") {
				return usageErrorf("explain: --url or --bucket is required")
			}
			if flags.Changed("origin") {
				q.Origin = &origin
			}
			if flags.Changed("request-method") {
				q.RequestMethod = &reqMethod
			}
			if flags.Changed("request-headers") {
				q.RequestHeaders = &reqHeaders
			}
			if q.Key != "" && q.Bucket == "" {
				return usageErrorf("explain: --key needs --bucket")
			}
			// explain.Request cannot tell a flag given empty from one not given.
			if q.Method == "" {
				return usageErrorf(`explain: --method "": want an HTTP method, e.g. OPTIONS or GET`)
			}
			if flags.Changed("url") && q.URL == "" {
				return usageErrorf(`explain: --url "": want an http:// or https:// URL`)
			}
			if flags.Changed("bucket") && q.Bucket == "" {
				return usageErrorf(`explain: --bucket "": want a bucket name`)
			}
			// A bad query is the command line's fault whatever the configuration holds: it is
			// refused before the configuration is read.
			if err := queryError(q.Check()); err != nil {
				return err
			}
			pol, _, err := loadPolicy(configPath)
			if err != nil {
				return err
			}
			req, err := explain.Request(pol.Config(), q)
			if err != nil {
				return queryError(err)
			}
			rep := explain.Run(pol, req)
			out := cmd.OutOrStdout()
			if format == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				enc.SetEscapeHTML(false)
				return enc.Encode(rep)
			}
			return rep.WriteText(out)
		},
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "", "s3cors configuration file, JSON or YAML (required)")
	f.StringVar(&q.URL, "url", "", "request URL (http or https), e.g. http://website.s3.localhost:8080/a.txt or http://localhost:8080/website/a.txt")
	f.StringVar(&q.Bucket, "bucket", "", "bucket name (instead of --url)")
	f.StringVar(&q.Key, "key", "", "object key (with --bucket); empty for the bucket root")
	f.StringVar(&q.Method, "method", "", "HTTP method, case-sensitive, e.g. OPTIONS for a preflight, GET, PUT (required)")
	f.StringVar(&origin, "origin", "", "Origin header value (absent unless given)")
	f.StringVar(&reqMethod, "request-method", "", "Access-Control-Request-Method header value (absent unless given)")
	f.StringVar(&reqHeaders, "request-headers", "", "Access-Control-Request-Headers header value, e.g. content-type,x-amz-meta-author (absent unless given)")
	f.StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}

// queryError turns explain's refusal of a query into a usage error naming the flag; other
// errors pass unchanged.
func queryError(err error) error {
	var qerr *explain.QueryError
	switch {
	case errors.As(err, &qerr) && qerr.Field != "":
		// The query's fields are spelled as the flags are.
		return usageErrorf("explain: --%s %q: %w", qerr.Field, qerr.Value, qerr.Err)
	case errors.Is(err, explain.ErrQuery):
		return &exitError{code: exitUsage, err: err}
	}
	return err
}
