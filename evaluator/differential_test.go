package evaluator

// Differential tests: every routine rewritten for speed against its former implementation in
// oracle_test.go, on arbitrary input, byte for byte. Seeds come from the shared case tables.

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/s3cors/s3cors/internal/testing/casetable"
)

// caseTables loads the shared tables, for seeds and for the policies FuzzEvaluateDifferential
// picks from.
func caseTables(tb testing.TB) []casetable.Table {
	tb.Helper()
	tables, err := casetable.LoadDir(filepath.Join("..", "testdata", "cases"))
	if err != nil {
		tb.Fatal(err)
	}
	return tables
}

// hostileACRH are values that exercise the word-at-a-time paths: word and tail boundaries,
// separators only, CR/LF/NUL inside and outside names, non-ASCII bytes next to letters.
var hostileACRH = []string{
	"", " ", ",", "a", "A", "Content-Type", "content-type,x-amz-date", "X-Amz-Date , content-TYPE",
	strings.Repeat(" ,", 512), strings.Repeat(" ,", 511) + "X", "\t,\t,a\t\t,  b  ,\t",
	"abcdefgh", "abcdefgh,", ",abcdefgh", "abcdefghi,ABCDEFGHIJKLMNOP,q", "ABCDEFG", "ABCDEFGHIJKLMNOPQRSTUVWXYZ@[`{",
	"a\r\nb", "x\x00", "  ,  ,  ,  \r", "\xc3\x89T\xc3\xa9", "a b c", strings.Repeat("Ab,", 100),
}

func FuzzParseACRHDifferential(f *testing.F) {
	for _, tb := range caseTables(f) {
		for _, c := range tb.Cases {
			if h, ok := c.Request.Get("Access-Control-Request-Headers"); ok {
				f.Add(h, true, "x")
			}
		}
	}
	for _, h := range hostileACRH {
		f.Add(h, true, strings.Repeat("Long-Previous-Name,", 5))
		f.Add(h, false, "")
	}
	f.Fuzz(func(t *testing.T, v string, has bool, prev string) {
		var s decisionScratch
		var rs refScratch
		// A previous value first, as a reused Decision has seen.
		for _, r := range []*Request{{RequestHeaders: prev, HasRequestHeaders: true}, {RequestHeaders: v, HasRequestHeaders: has}} {
			parseACRH(r, &s)
			refParseACRH(r, &rs)
			if string(s.acrh) != string(rs.acrh) || !slices.Equal(s.names, rs.names) || s.badACRH != rs.badACRH {
				t.Fatalf("parse %q: got %q %v bad=%v, want %q %v bad=%v",
					r.RequestHeaders, s.acrh, s.names, s.badACRH, rs.acrh, rs.names, rs.badACRH)
			}
			for n := range s.names {
				if k := keyOf(s.name(n)); k.n <= 16 {
					if w0, w1 := s.nameKey(n); w0 != k.w0 || w1 != k.w1 {
						t.Fatalf("parse %q: name %q has key %#x %#x, want %#x %#x", r.RequestHeaders, s.name(n), w0, w1, k.w0, k.w1)
					}
				}
			}
		}
		if got, want := unsafeOrigin(v), refUnsafeOrigin(v); got != want {
			t.Fatalf("unsafeOrigin(%q) = %v, want %v", v, got, want)
		}
	})
}

func FuzzIDsDifferential(f *testing.F) {
	for _, seed := range []uint64{0, 1, 1<<64 - 1, 0x0123456789abcdef, 0xfedcba9876543210, 0x8000000000000000} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, seed uint64) {
		var s decisionScratch
		var wantReq [16]byte
		var wantHost [76]byte
		fillIDs(&s, seed)
		refFillIDs(&wantReq, &wantHost, seed)
		if s.requestID != wantReq || s.hostID != wantHost {
			t.Fatalf("seed %#x: ids %s %s, want %s %s", seed, s.requestID[:], s.hostID[:], wantReq[:], wantHost[:])
		}
	})
}

// errorKinds pairs each errorReply with the code, message and resource the oracle takes.
var errorKinds = []struct {
	e                *errorReply
	code, msg        string
	bucket, object   string // ResourceType; "" for 400s
	takesRequestMeth bool
}{
	{&errNoOrigin, "BadRequest", "Insufficient information. Origin request header needed.", "", "", false},
	{&errMissingRequestMethod, "BadRequest", "Invalid Access-Control-Request-Method: null", "", "", false},
	{&errBucketNotFound, "AccessForbidden", "CORSResponse: Bucket not found", "BUCKET", "BUCKET", true},
	{&errNotEnabled, "AccessForbidden", "CORSResponse: CORS is not enabled for this bucket.", "BUCKET", "BUCKET", true},
	{&errNotAllowed, "AccessForbidden", msgNotAllowed, "BUCKET", "OBJECT", true},
}

func FuzzReplyErrorDifferential(f *testing.F) {
	for k := range errorKinds {
		for _, m := range []string{"PUT", "OPTIONS", "</Method>&\xff\x00", "é\x7f'\"<>", strings.Repeat("&", 100)} {
			f.Add(uint8(k), m, k%2 == 0, uint64(k)*0x9e3779b97f4a7c15, "GET")
		}
	}
	f.Fuzz(func(t *testing.T, kind uint8, method string, object bool, seed uint64, prev string) {
		k := errorKinds[int(kind)%len(errorKinds)]
		var d Decision
		var rd refDecision
		// Reused buffers, as in a Decision, with the method and the resource changing.
		for _, step := range []struct {
			m      string
			object bool
		}{{prev, !object}, {method, object}, {prev, object}, {method, !object}, {method, !object}} {
			m := step.m
			// Only "not allowed" tells an object from a bucket; the others always say BUCKET.
			object := step.object && k.object == "OBJECT"
			resource := k.bucket
			if object {
				resource = k.object
			}
			status, meth := 400, ""
			if k.takesRequestMeth {
				status, meth = 403, m
			}
			replyError(&d, seed, k.e, meth, object)
			refReplyError(&rd, seed, status, k.code, k.msg, meth, resource)
			if d.Status != rd.Status || !bytes.Equal(d.Body, rd.Body) || !slices.Equal(d.Headers, rd.Headers) {
				t.Fatalf("kind %d method %q: got %d %v\n%s\nwant %d %v\n%s", kind, m, d.Status, d.Headers, d.Body, rd.Status, rd.Headers, rd.Body)
			}
		}
	})
}

// differentialPolicies are the configurations FuzzEvaluateDifferential picks from: every
// shared case table's, and two with indexes (many origins, many wildcards, many headers).
func differentialPolicies(tb testing.TB) []*Policy {
	var pols []*Policy
	for _, table := range caseTables(tb) {
		pol, err := Load(table.Config)
		if err != nil {
			tb.Fatal(err)
		}
		pols = append(pols, pol)
	}
	var rules []string
	for i := 0; i < 12; i++ {
		rules = append(rules, fmt.Sprintf(`{"AllowedOrigins": ["https://app%d.example.com", "https://*.w%d.example.org"], "AllowedMethods": ["GET", "PUT"],
		  "AllowedHeaders": ["h0", "h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8", "x-amz-*", "content-TYPE"], "ExposeHeaders": ["ETag", "x-%d"], "MaxAgeSeconds": %d}`, i, i, i, i*100))
	}
	rules = append(rules, `{"AllowedOrigins": ["*"], "AllowedMethods": ["HEAD", "DELETE", "POST"], "AllowedHeaders": ["*"]}`)
	for _, doc := range []string{
		`{"buckets": {"site": {"CORSRules": [` + strings.Join(rules, ",") + `]}, "none": null},
		  "addressing": {"virtualHostSuffixes": ["s3.example.com", "example.com"], "pathStyle": true}}`,
		`{"buckets": {"site": [{"AllowedOrigins": ["https://app.example.com"], "AllowedMethods": ["GET", "PUT"],
		  "AllowedHeaders": ["content-type", "x-amz-date"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 3000}]},
		  "default": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}], "upstreamCORSHeaders": "keep"}`,
	} {
		pol, err := Load([]byte(doc))
		if err != nil {
			tb.Fatal(err)
		}
		pols = append(pols, pol)
	}
	return pols
}

// checkSameDecision compares a Decision with the oracle's, the ids included: the oracle is
// given the seed that the request id (its hex) carries.
func checkSameDecision(t *testing.T, p *Policy, r *Request, d *Decision, rd *refDecision) {
	t.Helper()
	var seed uint64
	for _, h := range d.Headers {
		if h.Name == HeaderRequestID {
			b, err := hex.DecodeString(h.Value)
			if err != nil || len(b) != 8 {
				t.Fatalf("request id %q", h.Value)
			}
			for _, c := range b {
				seed = seed<<8 | uint64(c)
			}
		}
	}
	p.refEvaluate(r, rd, seed)
	if d.Outcome != rd.Outcome || d.Reason != rd.Reason || d.Bucket != rd.Bucket || d.Key != rd.Key ||
		d.Rule != rd.Rule || d.Status != rd.Status || d.StripUpstream != rd.StripUpstream || d.Ambiguity != rd.Ambiguity ||
		!bytes.Equal(d.Body, rd.Body) || (d.Body == nil) != (rd.Body == nil) ||
		!slices.Equal(d.Headers, rd.Headers) || (d.Headers == nil) != (rd.Headers == nil) {
		t.Fatalf("request %+v:\ngot  %v %v %q %q rule %d status %d strip %v\n     %q\n     %s\nwant %v %v %q %q rule %d status %d strip %v\n     %q\n     %s",
			*r, d.Outcome, d.Reason, d.Bucket, d.Key, d.Rule, d.Status, d.StripUpstream, d.Headers, d.Body,
			rd.Outcome, rd.Reason, rd.Bucket, rd.Key, rd.Rule, rd.Status, rd.StripUpstream, rd.Headers, rd.Body)
	}
}

func FuzzEvaluateDifferential(f *testing.F) {
	for i, tb := range caseTables(f) {
		for _, c := range tb.Cases {
			o, ho := c.Request.Get("Origin")
			m, hm := c.Request.Get("Access-Control-Request-Method")
			h, hh := c.Request.Get("Access-Control-Request-Headers")
			f.Add(uint8(i), c.Request.Method, c.Request.Authority, c.Request.Path, o, m, h, flags(ho, hm, hh))
		}
	}
	for _, h := range hostileACRH {
		f.Add(uint8(255), "OPTIONS", "site.s3.example.com", "/k%20ey?x#y", "https://app3.example.com", "PUT", h, uint8(7))
		f.Add(uint8(254), "OPTIONS", "s3.local", "/site/k", "https://app.example.com", "PUT", h, uint8(7))
	}
	pols := differentialPolicies(f)
	f.Fuzz(func(t *testing.T, pi uint8, method, authority, path, origin, acrm, acrh string, has uint8) {
		p := pols[int(pi)%len(pols)]
		r := &Request{Method: method, Authority: authority, Path: path,
			Origin: origin, HasOrigin: has&1 != 0, RequestMethod: acrm, HasRequestMethod: has&2 != 0,
			RequestHeaders: acrh, HasRequestHeaders: has&4 != 0}
		// The same Decision serves r, r again with warm buffers, the same request as a
		// preflight or an actual request, without and with its headers, then r.
		other := *r
		if other.Method == "OPTIONS" {
			other.Method = "GET"
		} else {
			other.Method = "OPTIONS"
		}
		bare := other
		bare.HasRequestHeaders, bare.HasOrigin = !bare.HasRequestHeaders, true
		var d Decision
		var rd refDecision
		for _, r := range []*Request{r, r, &other, &bare, r} {
			p.Evaluate(r, &d)
			checkSameDecision(t, p, r, &d, &rd)
		}
	})
}

// FuzzForwardedDifferential holds the Forwarded reading of the attribution rule to the
// oracle's, written with regular expressions.
func FuzzForwardedDifferential(f *testing.F) {
	for _, v := range []string{"host=beta.s3.local", `for="x\",host=beta";proto=https`, `HOST="[::1]:9000"`,
		"for=a ; host=s3.example.com ,", `host="a\.s3.local"`, "host = a", `for="\x01"`, "for=\xff;host=s3.local"} {
		f.Add("site.s3.example.com", "/k", v)
		f.Add("s3.example.com", "/site/k", v)
	}
	pols := differentialPolicies(f)
	f.Fuzz(func(t *testing.T, authority, path, forwarded string) {
		r := &Request{Method: "OPTIONS", Authority: authority, Path: path, Forwarded: forwarded, HasForwarded: true}
		var d Decision
		for _, p := range pols[len(pols)-2:] {
			p.Evaluate(r, &d)
			if want := p.refAmbiguity(r); d.Ambiguity != want {
				t.Fatalf("%q %q Forwarded %q: ambiguity %v, oracle %v", authority, path, forwarded, d.Ambiguity, want)
			}
		}
	})
}

func flags(origin, acrm, acrh bool) uint8 {
	var f uint8
	if origin {
		f |= 1
	}
	if acrm {
		f |= 2
	}
	if acrh {
		f |= 4
	}
	return f
}

// TestDifferentialCaseTables runs every shared case through Evaluate and the oracle.
func TestDifferentialCaseTables(t *testing.T) {
	pols := differentialPolicies(t)
	var d Decision
	var rd refDecision
	for i, tb := range caseTables(t) {
		for _, c := range tb.Cases {
			r := &Request{Method: c.Request.Method, Authority: c.Request.Authority, Path: c.Request.Path}
			r.Origin, r.HasOrigin = c.Request.Get("Origin")
			r.RequestMethod, r.HasRequestMethod = c.Request.Get("Access-Control-Request-Method")
			r.RequestHeaders, r.HasRequestHeaders = c.Request.Get("Access-Control-Request-Headers")
			r.ForwardedHost, r.HasForwardedHost = c.Request.Joined("X-Forwarded-Host")
			r.Forwarded, r.HasForwarded = c.Request.Joined("Forwarded")
			for _, p := range []*Policy{pols[i], pols[len(pols)-1], pols[len(pols)-2]} {
				p.Evaluate(r, &d)
				checkSameDecision(t, p, r, &d, &rd)
			}
		}
	}
	if os.Getenv("CI") == "" && len(pols) < 3 {
		t.Fatal("no policies")
	}
}
