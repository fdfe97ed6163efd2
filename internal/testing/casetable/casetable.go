// Package casetable loads the shared table of CORS cases (testdata/cases/*.json) that every
// surface of s3cors runs: the evaluator, the httpcors middleware, the wasm filter in wasmhost,
// the ext_proc server and the local gateway. Each surface turns a Case's Request into a
// Response in its own way and calls Case.Check.
//
// A table file is
//
//	{"name": "...", "config": { s3cors configuration }, "cases": [ Case, ... ]}
//
// Upstream, when a surface forwards a request, is a fake store answering 200 with body
// "upstream-body", Content-Type text/plain and the Case's Upstream headers.
//
// Where it sits: test support (internal/testing), imported only by tests and other test
// support; standard library only.
package casetable

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// UpstreamBody is the body the fake upstream answers every forwarded request with.
const UpstreamBody = "upstream-body"

// Table is one file of cases sharing one configuration.
type Table struct {
	File   string          `json:"-"`
	Name   string          `json:"name"`
	Config json.RawMessage `json:"config"`
	Cases  []Case          `json:"cases"`
}

// Header is one header line; order and repeats are kept.
type Header [2]string

// Request is the client's request.
type Request struct {
	Method    string   `json:"method"`
	Authority string   `json:"authority"`
	Path      string   `json:"path"`
	Headers   []Header `json:"headers,omitempty"`
}

// Get returns the first value of the named header (any case) and whether it is present.
func (r Request) Get(name string) (string, bool) {
	for _, h := range r.Headers {
		if strings.EqualFold(h[0], name) {
			return h[1], true
		}
	}
	return "", false
}

// Joined returns every value of the named header (any case) joined by ",", as a proxy joins
// a repeated header, and whether it is present.
func (r Request) Joined(name string) (string, bool) {
	var vs []string
	for _, h := range r.Headers {
		if strings.EqualFold(h[0], name) {
			vs = append(vs, h[1])
		}
	}
	return strings.Join(vs, ","), len(vs) > 0
}

// Case is one request and what the client must see.
type Case struct {
	Name     string   `json:"name"`
	Request  Request  `json:"request"`
	Upstream []Header `json:"upstream,omitempty"` // headers the fake upstream adds to its answer
	Want     Want     `json:"want"`
}

// Outcome names what happens to the request.
const (
	OutcomeReply   = "reply"   // answered at the proxy; the upstream never sees it
	OutcomeForward = "forward" // reaches the upstream; its answer may be decorated or stripped
	OutcomePass    = "pass"    // reaches the upstream; its answer reaches the client untouched
)

// Want is what the client must receive.
type Want struct {
	Outcome string `json:"outcome"`
	// Status of a reply (forwarded requests always get the upstream's 200).
	Status int `json:"status,omitempty"`
	// Headers the client's response must carry (lower-case names). Single-valued headers are
	// compared exactly; list-valued ones (Vary, Access-Control-Allow-Methods/-Headers/
	// -Expose-Headers) after splitting on commas and trimming. "<request-id>" and
	// "<host-id>" match S3's id formats.
	Headers map[string]string `json:"headers,omitempty"`
	// Absent lists headers (lower-case) the client's response must not carry.
	Absent []string `json:"absent,omitempty"`
	// Body of a reply, exact, with "<request-id>"/"<host-id>" placeholders.
	Body *string `json:"body,omitempty"`
}

// Response is what a surface observed.
type Response struct {
	Status          int
	Headers         []Header // as received; names in any case
	Body            []byte
	ReachedUpstream bool
}

// Values returns every value of the named header (any case).
func (r Response) Values(name string) []string {
	var vs []string
	for _, h := range r.Headers {
		if strings.EqualFold(h[0], name) {
			vs = append(vs, h[1])
		}
	}
	return vs
}

// LoadDir loads every *.json table in dir, sorted by file name.
func LoadDir(dir string) ([]Table, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, fmt.Errorf("casetable: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("casetable: no *.json tables in %q", dir)
	}
	sort.Strings(files)
	tables := make([]Table, 0, len(files))
	for _, f := range files {
		t, err := LoadFile(f)
		if err != nil {
			return nil, err
		}
		tables = append(tables, t)
	}
	return tables, nil
}

// LoadFile loads one table, strictly: unknown keys are errors.
func LoadFile(path string) (Table, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Table{}, fmt.Errorf("casetable: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var t Table
	if err := dec.Decode(&t); err != nil {
		return Table{}, fmt.Errorf("casetable: %s: %w", path, err)
	}
	t.File = path
	for i, c := range t.Cases {
		switch c.Want.Outcome {
		case OutcomeReply, OutcomeForward, OutcomePass:
		default:
			return Table{}, fmt.Errorf("casetable: %s: case %d %q: want.outcome %q is not reply, forward or pass", path, i, c.Name, c.Want.Outcome)
		}
	}
	return t, nil
}

var (
	requestIDRe = regexp.MustCompile(`^[0-9A-Z]{16}$`)
	hostIDRe    = regexp.MustCompile(`^[A-Za-z0-9+/=]{56,120}$`)
	listHeaders = map[string]bool{
		"vary":                          true,
		"access-control-allow-methods":  true,
		"access-control-allow-headers":  true,
		"access-control-expose-headers": true,
	}
)

// IsRequestID reports whether s has the form of an S3 x-amz-request-id.
func IsRequestID(s string) bool { return requestIDRe.MatchString(s) }

// IsHostID reports whether s has the form of an S3 x-amz-id-2.
func IsHostID(s string) bool { return hostIDRe.MatchString(s) }

// Check compares what a surface observed with what the case wants. It returns every
// difference at once, or nil.
func (c Case) Check(got Response) error {
	var diffs []string
	add := func(format string, args ...any) { diffs = append(diffs, fmt.Sprintf(format, args...)) }
	switch c.Want.Outcome {
	case OutcomeReply:
		if got.ReachedUpstream {
			add("request reached the upstream; want it answered at the proxy")
		}
		if got.Status != c.Want.Status {
			add("status %d, want %d", got.Status, c.Want.Status)
		}
	case OutcomeForward, OutcomePass:
		if !got.ReachedUpstream {
			add("request did not reach the upstream (status %d)", got.Status)
		}
		if got.Status != 200 {
			add("status %d, want the upstream's 200", got.Status)
		}
		if string(got.Body) != UpstreamBody {
			add("body %q, want the upstream's %q", got.Body, UpstreamBody)
		}
	}
	if c.Want.Outcome == OutcomePass {
		for _, h := range c.Upstream {
			if vs := got.Values(h[0]); len(vs) == 0 || !contains(vs, h[1]) {
				add("upstream header %s: %q lost on a pass-through (got %q)", h[0], h[1], vs)
			}
		}
		for _, h := range got.Headers {
			if strings.HasPrefix(strings.ToLower(h[0]), "access-control-") && !hasHeader(c.Upstream, h[0]) {
				add("pass-through response gained %s: %q", h[0], h[1])
			}
		}
	}
	names := make([]string, 0, len(c.Want.Headers))
	for n := range c.Want.Headers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		want := c.Want.Headers[name]
		vs := got.Values(name)
		if len(vs) == 0 {
			add("header %s missing, want %q", name, want)
			continue
		}
		if !listHeaders[strings.ToLower(name)] && len(vs) > 1 {
			add("header %s repeated %q, want one value %q", name, vs, want)
			continue
		}
		if !valueMatches(name, strings.Join(vs, ", "), want) {
			add("header %s = %q, want %q", name, strings.Join(vs, ", "), want)
		}
	}
	for _, name := range c.Want.Absent {
		if vs := got.Values(name); len(vs) > 0 {
			add("header %s = %q, want it absent", name, vs)
		}
	}
	if c.Want.Body != nil {
		if !bodyMatches(string(got.Body), *c.Want.Body) {
			add("body %q, want %q", got.Body, *c.Want.Body)
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	return fmt.Errorf("%s:\n  %s", c.Name, strings.Join(diffs, "\n  "))
}

func contains(vs []string, v string) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

func hasHeader(hs []Header, name string) bool {
	for _, h := range hs {
		if strings.EqualFold(h[0], name) {
			return true
		}
	}
	return false
}

func valueMatches(name, got, want string) bool {
	switch want {
	case "<request-id>":
		return IsRequestID(got)
	case "<host-id>":
		return IsHostID(got)
	}
	if !listHeaders[strings.ToLower(name)] {
		return got == want
	}
	return normaliseList(got) == normaliseList(want)
}

func normaliseList(v string) string {
	parts := strings.Split(v, ",")
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, ",")
}

var placeholderRe = regexp.MustCompile(`<request-id>|<host-id>`)

// bodyMatches compares an XML body with a want that may hold <request-id>/<host-id>.
func bodyMatches(got, want string) bool {
	pattern := "^"
	rest := want
	for {
		loc := placeholderRe.FindStringIndex(rest)
		if loc == nil {
			pattern += regexp.QuoteMeta(rest)
			break
		}
		pattern += regexp.QuoteMeta(rest[:loc[0]])
		if rest[loc[0]:loc[1]] == "<request-id>" {
			pattern += `[0-9A-Z]{16}`
		} else {
			pattern += `[A-Za-z0-9+/=]{56,120}`
		}
		rest = rest[loc[1]:]
	}
	pattern += "$"
	ok, err := regexp.MatchString(pattern, got)
	return err == nil && ok
}
