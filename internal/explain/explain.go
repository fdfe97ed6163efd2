// Package explain turns evaluator.Policy.Explain into a report a person can read: for each
// rule of the bucket, which of origin, method and requested headers matched, the verdict, and
// the exact response S3 would give. `s3cors explain` prints it; the gateway's
// /debug/s3cors/explain endpoint serves it as JSON to the demo page.
//
// The JSON form is stable (documented in cmd/s3cors's `explain --help`): fields are only
// ever added.
//
// Where it sits: imports only the evaluator; cmd/s3cors and internal/gateway use it.
package explain

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/s3cors/s3cors/evaluator"
)

// Query is the request to explain, as a user describes it.
type Query struct {
	Method string
	// URL, when set, gives host and path (virtual-hosted or path style), e.g.
	// http://website.s3.localhost:8080/index.html. Otherwise Bucket and Key are addressed the
	// way the configuration's addressing section says, preferring path style.
	URL    string
	Bucket string
	Key    string
	// Origin, RequestMethod and RequestHeaders are header values; nil means the header is
	// absent.
	Origin         *string
	RequestMethod  *string
	RequestHeaders *string
}

// ErrQuery is wrapped by every error Request returns for a malformed query.
var ErrQuery = errors.New("invalid query")

// QueryError is a query Request refuses because no client could send it, or because
// explaining it would quietly explain another request: a bucket name with "/" (read back as
// bucket and key), a header value with a control character, a URL that is not http(s).
type QueryError struct {
	// Field names the part of the query at fault as the gateway's query parameter and the
	// CLI's flag spell it: "method", "url", "bucket", "origin", "request-method" or
	// "request-headers"; empty when the query as a whole is at fault (neither URL nor bucket,
	// or both).
	Field string
	// Value is the field's value as given.
	Value string
	// Err says what is wrong with it.
	Err error
}

func (e *QueryError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("explain: %v: %v", ErrQuery, e.Err)
	}
	return fmt.Sprintf("explain: %v: %s %q: %v", ErrQuery, e.Field, e.Value, e.Err)
}

// Unwrap makes a QueryError match ErrQuery and its cause.
func (e *QueryError) Unwrap() []error { return []error{ErrQuery, e.Err} }

func queryErr(field, value, reason string) error {
	return &QueryError{Field: field, Value: value, Err: errors.New(reason)}
}

// Check reports a malformed query, as Request would, without a configuration: callers can
// refuse a bad query before loading one. The error is a *QueryError (which matches ErrQuery).
func (q Query) Check() error {
	_, err := q.check()
	return err
}

// Request builds the evaluator's request for q under the configuration cfg. A malformed query
// is a *QueryError (which matches ErrQuery).
func Request(cfg *evaluator.Config, q Query) (*evaluator.Request, error) {
	u, err := q.check()
	if err != nil {
		return nil, err
	}
	r := &evaluator.Request{Method: q.Method}
	if u != nil {
		r.Authority = u.Host
		r.Path = u.EscapedPath()
		if r.Path == "" {
			r.Path = "/"
		}
		if u.RawQuery != "" {
			r.Path += "?" + u.RawQuery
		}
	} else {
		r.Authority, r.Path = Address(cfg, q.Bucket, q.Key)
	}
	if q.Origin != nil {
		r.Origin, r.HasOrigin = *q.Origin, true
	}
	if q.RequestMethod != nil {
		r.RequestMethod, r.HasRequestMethod = *q.RequestMethod, true
	}
	if q.RequestHeaders != nil {
		r.RequestHeaders, r.HasRequestHeaders = *q.RequestHeaders, true
	}
	return r, nil
}

// check is Check, returning the parsed URL when the query gives one (nil for a bucket).
func (q Query) check() (*url.URL, error) {
	if q.Method == "" {
		return nil, queryErr("method", q.Method, "a method is required, e.g. OPTIONS or GET")
	}
	for _, c := range q.Method {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", c) {
			return nil, queryErr("method", q.Method, "not an HTTP method token")
		}
	}
	var u *url.URL
	switch {
	case q.URL != "" && (q.Bucket != "" || q.Key != ""):
		return nil, &QueryError{Err: errors.New("give either a URL or a bucket (and key), not both")}
	case q.URL != "":
		var err error
		if u, err = url.Parse(q.URL); err != nil {
			var uerr *url.Error
			if errors.As(err, &uerr) {
				err = uerr.Err // its message repeats the URL
			}
			return nil, &QueryError{Field: "url", Value: q.URL, Err: err}
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return nil, queryErr("url", q.URL, "want an http:// or https:// URL")
		}
		if u.Host == "" {
			return nil, queryErr("url", q.URL, "no host (write it as http://host/path)")
		}
	case q.Bucket != "":
		if strings.ContainsAny(q.Bucket, "/?#") || hasControl(q.Bucket, false) {
			return nil, queryErr("bucket", q.Bucket, `a bucket name cannot contain "/", "?", "#" or control characters (give the object as the key)`)
		}
	default:
		return nil, &QueryError{Err: errors.New("a URL or a bucket is required")}
	}
	for _, h := range []struct {
		field string
		value *string
	}{{"origin", q.Origin}, {"request-method", q.RequestMethod}, {"request-headers", q.RequestHeaders}} {
		if h.value != nil && hasControl(*h.value, true) {
			return nil, queryErr(h.field, *h.value, "a header value cannot contain control characters")
		}
	}
	return u, nil
}

// hasControl reports whether s holds an ASCII control character. A header value may hold
// horizontal tabs (RFC 9110 section 5.5), so tab is allowed when allowTab is set.
func hasControl(s string, allowTab bool) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && (!allowTab || c != '\t')) || c == 0x7f {
			return true
		}
	}
	return false
}

// Address returns the authority and path a client would use for bucket and key under cfg's
// addressing: path style on the first virtual-host suffix (or "localhost") when path style is
// on, virtual-hosted style otherwise.
func Address(cfg *evaluator.Config, bucket, key string) (authority, path string) {
	escaped := (&url.URL{Path: "/" + key}).EscapedPath()
	suffixes := cfg.Addressing.VirtualHostSuffixes
	if !cfg.Addressing.PathStyle && len(suffixes) > 0 {
		return bucket + "." + suffixes[0], escaped
	}
	host := "localhost"
	if len(suffixes) > 0 {
		host = suffixes[0]
	}
	if key == "" {
		return host, "/" + bucket
	}
	return host, "/" + bucket + escaped
}

// Report is the explanation of one request. Its JSON form is the stable output of
// `s3cors explain --format json` and of the gateway's /debug/s3cors/explain.
type Report struct {
	Request RequestInfo `json:"request"`
	Bucket  string      `json:"bucket"`
	Key     string      `json:"key"`
	// RulesFrom says where the bucket's rules came from: "bucket", "default", "unlisted" or ""
	// (no bucket, or a bucket without rules).
	RulesFrom string `json:"rules_from"`
	// Preflight: the request is an OPTIONS preflight, answered at the proxy.
	Preflight bool `json:"preflight"`
	// CheckedMethod is the method matched against AllowedMethods: the
	// Access-Control-Request-Method value when sent, else the request's method.
	CheckedMethod string       `json:"checked_method"`
	Rules         []RuleReport `json:"rules"`
	// Outcome is what the proxy does: "reply", "decorate", "forward" or "pass".
	Outcome string `json:"outcome"`
	// Reason is the evaluator's reason, e.g. "allowed", "not_allowed", "not_enabled".
	Reason string `json:"reason"`
	// Rule is the index of the rule used, -1 when none.
	Rule int `json:"rule"`
	// Allowed: a browser would let the page go on (preflight passed, or the response is
	// readable cross-origin). False for pass-through requests, which s3cors does not judge.
	Allowed bool `json:"allowed"`
	// Summary is one sentence saying what happened and why.
	Summary string `json:"summary"`
	// Notes point out what the query may not have meant, e.g. that "options" (lower case) is
	// an actual request, not a preflight. Empty, never null, when there is nothing to say.
	Notes    []string     `json:"notes"`
	Response ResponseInfo `json:"response"`
}

// RequestInfo is the request as evaluated.
type RequestInfo struct {
	Method         string  `json:"method"`
	Authority      string  `json:"authority"`
	Path           string  `json:"path"`
	Origin         *string `json:"origin"`
	RequestMethod  *string `json:"access_control_request_method"`
	RequestHeaders *string `json:"access_control_request_headers"`
}

// RuleReport says how one rule fared.
type RuleReport struct {
	Index   int         `json:"index"`
	ID      string      `json:"id,omitempty"`
	Used    bool        `json:"used"` // the first matching rule, the one S3 applies
	Origin  CheckReport `json:"origin"`
	Method  CheckReport `json:"method"`
	Headers CheckReport `json:"headers"`
}

// CheckReport is one of a rule's three conditions.
type CheckReport struct {
	Matched bool     `json:"matched"`
	Allowed []string `json:"allowed"` // what the rule allows
	// Failed is the first requested header no AllowedHeader matched (headers only).
	Failed string `json:"failed,omitempty"`
}

// ResponseInfo is what S3 answers. For a reply it is the whole response; for a forwarded
// request Status is 0 (the store decides) and Headers are the CORS headers added to the
// store's answer.
type ResponseInfo struct {
	Status  int         `json:"status"`
	Headers [][2]string `json:"headers"`
	Body    string      `json:"body"`
	// Note says in words what happens to the response.
	Note string `json:"note"`
}

// Run explains r under pol.
func Run(pol *evaluator.Policy, r *evaluator.Request) *Report {
	e := pol.Explain(r)
	d := &e.Decision
	rep := &Report{
		Request: RequestInfo{Method: r.Method, Authority: r.Authority, Path: r.Path},
		Bucket:  d.Bucket, Key: d.Key, RulesFrom: e.Source,
		Preflight: r.Method == http.MethodOptions,
		Outcome:   outcomeName(d.Outcome), Reason: d.Reason.String(), Rule: d.Rule,
		Rules: []RuleReport{}, Notes: []string{},
	}
	// HTTP methods are case-sensitive, so "options" is explained as the actual request it is;
	// the note says why no preflight was evaluated.
	if r.Method != http.MethodOptions && strings.EqualFold(r.Method, http.MethodOptions) {
		rep.Notes = append(rep.Notes, fmt.Sprintf("method %q is not a preflight: methods are case-sensitive, and a preflight is OPTIONS (upper case)", r.Method))
	}
	if r.HasOrigin {
		rep.Request.Origin = &r.Origin
	}
	if r.HasRequestMethod {
		rep.Request.RequestMethod = &r.RequestMethod
	}
	if r.HasRequestHeaders {
		rep.Request.RequestHeaders = &r.RequestHeaders
	}
	rep.CheckedMethod = r.Method
	if r.HasRequestMethod && r.RequestMethod != "" {
		rep.CheckedMethod = r.RequestMethod
	}
	rules := rulesOf(pol.Config(), e.Source, d.Bucket)
	for _, t := range e.Rules {
		rr := RuleReport{Index: t.Index, ID: t.ID, Used: t.Index == d.Rule,
			Origin:  CheckReport{Matched: t.OriginMatched},
			Method:  CheckReport{Matched: t.MethodMatched},
			Headers: CheckReport{Matched: t.HeadersMatched, Failed: t.FailedHeader},
		}
		if t.Index >= 0 && t.Index < len(rules) {
			rule := rules[t.Index]
			rr.Origin.Allowed = nonNil(rule.AllowedOrigins)
			rr.Method.Allowed = nonNil(rule.AllowedMethods)
			rr.Headers.Allowed = nonNil(rule.AllowedHeaders)
		}
		rep.Rules = append(rep.Rules, rr)
	}
	rep.Response.Headers = [][2]string{}
	for _, h := range d.Headers {
		rep.Response.Headers = append(rep.Response.Headers, [2]string{h.Name, h.Value})
	}
	switch d.Outcome {
	case evaluator.Reply:
		rep.Response.Status = d.Status
		rep.Response.Body = string(d.Body)
		rep.Response.Note = "answered at the proxy; the store never sees the request"
		rep.Allowed = d.Status == http.StatusOK
	case evaluator.Decorate:
		rep.Response.Note = "forwarded to the store; these CORS headers are added to whatever it answers"
		rep.Allowed = true
	case evaluator.Forward:
		rep.Response.Note = "forwarded to the store; its answer gets no CORS headers, so a browser hides it from a cross-origin page"
		if d.SetsHeaders() {
			rep.Response.Note = `forwarded to the store; its answer gets no CORS headers, so a browser hides it from a cross-origin page, but it gets S3's Vary ("vary": "always", unlike S3), so no cache serves it to another origin`
		}
	case evaluator.PassThrough:
		rep.Response.Note = "passed through untouched: s3cors does not handle this request"
	}
	if d.StripUpstream && d.Outcome != evaluator.Reply && d.Outcome != evaluator.PassThrough {
		rep.Response.Note += " (the store's own Access-Control-* headers are removed)"
	}
	rep.Summary = summary(rep, d)
	return rep
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func rulesOf(cfg *evaluator.Config, source, bucket string) []evaluator.Rule {
	if cfg == nil {
		return nil
	}
	var b *evaluator.BucketCORS
	switch source {
	case "bucket":
		b = cfg.Buckets[bucket]
	case "default":
		b = cfg.Default
	}
	if b == nil {
		return nil
	}
	return b.Rules
}

func outcomeName(o evaluator.Outcome) string {
	switch o {
	case evaluator.Reply:
		return "reply"
	case evaluator.Decorate:
		return "decorate"
	case evaluator.Forward:
		return "forward"
	default:
		return "pass"
	}
}

// ruleName is `rule #0 "id"` or `rule #0`.
func ruleName(index int, id string) string {
	if id == "" {
		return "rule #" + strconv.Itoa(index)
	}
	return fmt.Sprintf("rule #%d %q", index, id)
}

// firstFailure names the first of a rule's conditions that failed, in S3's order.
func firstFailure(rr RuleReport, rep *Report) string {
	switch {
	case !rr.Origin.Matched:
		if rep.Request.Origin == nil || *rep.Request.Origin == "" {
			return "no Origin to match"
		}
		return fmt.Sprintf("origin %q is not in AllowedOrigins", *rep.Request.Origin)
	case !rr.Method.Matched:
		return fmt.Sprintf("method %q is not in AllowedMethods", rep.CheckedMethod)
	case !rr.Headers.Matched:
		return fmt.Sprintf("header %q is not in AllowedHeaders", rr.Headers.Failed)
	}
	return "matches"
}

func summary(rep *Report, d *evaluator.Decision) string {
	bucket := fmt.Sprintf("bucket %q", rep.Bucket)
	switch d.Reason {
	case evaluator.ReasonNotBucket:
		return "not an S3 bucket request (no bucket in the host or path): passed through untouched"
	case evaluator.ReasonUnlistedForward:
		return bucket + " is not listed and unlistedBuckets is \"forward\": passed through untouched"
	case evaluator.ReasonAllowed:
		name := ruleName(d.Rule, ruleID(rep, d.Rule))
		if rep.Preflight {
			return "preflight allowed by " + name + ": S3 answers 200 with CORS headers"
		}
		return "allowed by " + name + ": the store's answer gets CORS headers, so the page can read it"
	case evaluator.ReasonNoOrigin:
		return "denied: a preflight without an Origin header gets 400"
	case evaluator.ReasonBucketNotFound:
		return "denied: " + bucket + " is not listed and unlistedBuckets is \"not-found\": 403 Bucket not found"
	case evaluator.ReasonNotEnabled:
		if rep.RulesFrom == "unlisted" {
			return "denied: " + bucket + " is not listed (unlistedBuckets \"not-enabled\"), so it has no CORS configuration: 403"
		}
		return "denied: " + bucket + " has no CORS configuration: 403"
	case evaluator.ReasonMissingRequestMethod:
		return "denied: a preflight without Access-Control-Request-Method gets 400"
	case evaluator.ReasonNotAllowed:
		return "denied: no rule matches" + failures(rep) + ": 403"
	case evaluator.ReasonActualNoOrigin:
		return "no Origin header, so not a cross-origin request: forwarded, no CORS headers"
	case evaluator.ReasonActualNoMatch:
		if len(rep.Rules) == 0 {
			return bucket + " has no CORS configuration: forwarded without CORS headers, so a browser hides the answer from the page"
		}
		return "no rule matches" + failures(rep) + ": forwarded without CORS headers, so a browser hides the answer from the page"
	}
	return d.Reason.String()
}

func ruleID(rep *Report, i int) string {
	for _, r := range rep.Rules {
		if r.Index == i {
			return r.ID
		}
	}
	return ""
}

func failures(rep *Report) string {
	if len(rep.Rules) == 0 {
		return ""
	}
	parts := make([]string, 0, len(rep.Rules))
	for _, rr := range rep.Rules {
		parts = append(parts, ruleName(rr.Index, rr.ID)+": "+firstFailure(rr, rep))
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

// WriteText writes the report for a terminal.
func (rep *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	req := rep.Request
	fmt.Fprintf(&b, "%s %s\n", req.Method, req.Path)
	fmt.Fprintf(&b, "  Host: %s\n", req.Authority)
	if req.Origin != nil {
		fmt.Fprintf(&b, "  Origin: %s\n", *req.Origin)
	}
	if req.RequestMethod != nil {
		fmt.Fprintf(&b, "  Access-Control-Request-Method: %s\n", *req.RequestMethod)
	}
	if req.RequestHeaders != nil {
		fmt.Fprintf(&b, "  Access-Control-Request-Headers: %s\n", *req.RequestHeaders)
	}
	b.WriteString("\n")
	switch {
	case rep.Bucket == "":
		b.WriteString("no bucket\n")
	case rep.Key == "":
		fmt.Fprintf(&b, "bucket %q (bucket root)", rep.Bucket)
	default:
		fmt.Fprintf(&b, "bucket %q, key %q", rep.Bucket, rep.Key)
	}
	if rep.Bucket != "" {
		switch {
		case rep.RulesFrom == "bucket" && len(rep.Rules) > 0:
			b.WriteString(": rules from the bucket's CORS configuration\n")
		case rep.RulesFrom == "bucket":
			b.WriteString(": listed without CORS configuration\n")
		case rep.RulesFrom == "default":
			b.WriteString(": not listed, rules from \"default\"\n")
		case rep.RulesFrom == "unlisted":
			b.WriteString(": not listed, no \"default\" rules\n")
		default:
			b.WriteString(": no CORS rules\n")
		}
	}
	for _, rr := range rep.Rules {
		state := "no match"
		if rr.Used {
			state = "MATCH, used"
		} else if rr.Origin.Matched && rr.Method.Matched && rr.Headers.Matched {
			state = "matches (an earlier rule is used)"
		}
		fmt.Fprintf(&b, "\n%s: %s\n", ruleName(rr.Index, rr.ID), state)
		origin := "(none)"
		if req.Origin != nil {
			origin = strconv.Quote(*req.Origin)
		}
		fmt.Fprintf(&b, "  origin   %-8s %s in %s\n", yesNo(rr.Origin.Matched), origin, list(rr.Origin.Allowed))
		fmt.Fprintf(&b, "  method   %-8s %s in %s\n", yesNo(rr.Method.Matched), strconv.Quote(rep.CheckedMethod), list(rr.Method.Allowed))
		requested := "(none requested)"
		if req.RequestHeaders != nil && strings.TrimSpace(*req.RequestHeaders) != "" {
			requested = strconv.Quote(*req.RequestHeaders)
		}
		line := fmt.Sprintf("  headers  %-8s %s in %s", yesNo(rr.Headers.Matched), requested, list(rr.Headers.Allowed))
		if !rr.Headers.Matched && rr.Headers.Failed != "" {
			line += fmt.Sprintf(": %q not allowed", rr.Headers.Failed)
		}
		b.WriteString(line + "\n")
	}
	fmt.Fprintf(&b, "\n%s\n\n%s", rep.Summary, rep.Response.Note)
	if rep.Outcome == "reply" || len(rep.Response.Headers) > 0 {
		b.WriteString(":")
	}
	b.WriteString("\n")
	if rep.Outcome == "reply" {
		fmt.Fprintf(&b, "HTTP/1.1 %d %s\n", rep.Response.Status, http.StatusText(rep.Response.Status))
	}
	for _, h := range rep.Response.Headers {
		fmt.Fprintf(&b, "%s: %s\n", h[0], h[1])
	}
	if rep.Response.Body != "" {
		fmt.Fprintf(&b, "\n%s\n", strings.TrimRight(rep.Response.Body, "\n"))
	}
	if len(rep.Notes) > 0 {
		b.WriteString("\n")
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// list renders a rule's list for the text report; an empty one is "(none)".
func list(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return "[" + strings.Join(s, ", ") + "]"
}

func yesNo(ok bool) string {
	if ok {
		return "match"
	}
	return "NO MATCH"
}
