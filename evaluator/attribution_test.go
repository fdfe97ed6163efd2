package evaluator_test

import (
	"net/url"
	pathpkg "path"
	"strings"
	"testing"

	"github.com/s3cors/s3cors/evaluator"
)

// attributionConfig has alpha (allowing https://a.example), beta without CORS, and a default
// rule set, so that a grant of any bucket's rules shows.
const attributionConfig = `{"buckets": {
    "alpha": [{"AllowedOrigins": ["https://a.example"], "AllowedMethods": ["GET"]}],
    "beta": null},
  "default": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}],
  "addressing": {"virtualHostSuffixes": ["s3.local"], "pathStyle": true}}`

// TestAttribution pins the attribution rule on the hostile variants of issue 14: each
// request either names the same bucket to every plausible store reading, or gets no CORS.
func TestAttribution(t *testing.T) {
	pol := mustLoad(t, attributionConfig)
	none := evaluator.AmbiguityNone
	for _, c := range []struct {
		authority, path string
		edit            func(*evaluator.Request)
		want            evaluator.Ambiguity
	}{
		{"alpha.s3.local", "/k", nil, none},
		{"s3.local", "/alpha/k", nil, none},
		{"ALPHA.S3.LOCAL:9000", "/k", nil, none},
		{"alpha.s3.local.", "/k", nil, none},
		{"127.0.0.1:9000", "/alpha/k", nil, none},
		{"[::1]:9000", "/alpha/k", nil, none},
		{"s3.localhost", "/alpha/k", nil, none},                      // a store reads s3.local: path style, alpha too
		{"alpha.s3.localx", "/alpha/k", nil, none},                   // alpha either way
		{"alpha.s3.local", "/k;v=1", nil, none},                      // ";" in a key
		{"alpha.s3.local", "/dir%2Ffile", nil, none},                 // %2F in a virtual-hosted key
		{"s3.local", "/alpha/a%2Fb", nil, none},                      // %2F in a path-style key
		{"alpha.s3.local", "/alpha//k", nil, none},                   // "//" inside a key
		{"s3.local", "/alpha/k?x=/../beta%2F&y=http://b", nil, none}, // the query is not read
		{"beta.s3.local.evil.example", "/alpha/k", nil, evaluator.AmbiguitySuffixInHost},
		{"beta.s3.localhost", "/alpha/k", nil, evaluator.AmbiguitySuffixInHost},
		{"beta.s3.local-x", "/alpha/k", nil, evaluator.AmbiguitySuffixInHost},
		{"beta.s3.local.x.s3.local", "/secret.txt", nil, evaluator.AmbiguitySuffixInHost},
		{"beta.s3.local..", "/alpha/k", nil, evaluator.AmbiguityMalformedHost},
		{"beta..s3.local", "/k", nil, evaluator.AmbiguityMalformedHost},
		{"user@alpha.s3.local", "/k", nil, evaluator.AmbiguityMalformedHost},
		{"alpha.s3.local:x", "/k", nil, evaluator.AmbiguityMalformedHost},
		{"beta.s3.local:alpha.s3.local:80", "/k", nil, evaluator.AmbiguityMalformedHost},
		{"beta.s3.local:", "/alpha/k", nil, none}, // empty port: virtual-hosted beta, as every reader sees it
		{"b.:80", "/alpha/k", nil, none},
		{".", "/alpha/k", nil, evaluator.AmbiguityMalformedHost},
		{"alpha.s3.local\x00.beta", "/k", nil, evaluator.AmbiguityMalformedHost},
		{"alph\u00e4.s3.local", "/k", nil, evaluator.AmbiguityMalformedHost},
		{"beta%2es3.local", "/alpha/k", nil, evaluator.AmbiguityMalformedHost},
		{"[::1", "/alpha/k", nil, evaluator.AmbiguityMalformedHost},
		{"alpha.s3.local,beta.s3.local", "/k", nil, evaluator.AmbiguityRepeatedHost},
		{"alpha.s3.local", "/k", func(r *evaluator.Request) { r.RepeatedHost = true }, evaluator.AmbiguityRepeatedHost},
		{"s3.local", "/beta%2Fsecret.txt", nil, evaluator.AmbiguityBucketSegment},
		{"s3.local", "/beta%2f", nil, evaluator.AmbiguityBucketSegment},
		{"s3.local", "/beta%5Csecret.txt", nil, evaluator.AmbiguityBucketSegment},
		{"s3.local", "/beta\\secret.txt", nil, evaluator.AmbiguityBucketSegment},
		{"s3.local", "/beta;x/secret.txt", nil, evaluator.AmbiguityBucketSegment},
		{"s3.local", "/beta%252F/k", nil, evaluator.AmbiguityBucketSegment},
		{"s3.local", "//beta/k", nil, evaluator.AmbiguityEmptySegment},
		{"alpha.s3.local", "//beta.s3.local/k?x=://", nil, evaluator.AmbiguityEmptySegment},
		{"s3.local", "/alpha/../beta/k", nil, evaluator.AmbiguityDotSegment},
		{"s3.local", "/alpha/%2e%2E/beta/k", nil, evaluator.AmbiguityDotSegment},
		{"s3.local", "/alpha/..;x/beta/k", nil, evaluator.AmbiguityDotSegment},
		{"s3.local", "/alpha/..%2Fbeta/k", nil, evaluator.AmbiguityDotSegment},
		{"s3.local", "/alpha/k/..", nil, evaluator.AmbiguityDotSegment},
		{"alpha.s3.local", "/./k", nil, evaluator.AmbiguityDotSegment},
		{"s3.local", "/alpha/k\x7f", nil, evaluator.AmbiguityPathBytes},
		{"s3.local", "/alpha/k\u00e9", nil, evaluator.AmbiguityPathBytes},
		{"s3.local", "/alpha#/../beta/k", nil, evaluator.AmbiguityPathBytes},
		{"s3.local", "/alpha/k%zz", nil, evaluator.AmbiguityPathBytes},
		{"alpha.s3.local", "http://beta.s3.local/k", nil, evaluator.AmbiguityAbsoluteForm},
		{"alpha.s3.local", "/k", func(r *evaluator.Request) { r.Host, r.HasHost = "beta.s3.local", true }, evaluator.AmbiguityHostMismatch},
		{"alpha.s3.local", "/k", func(r *evaluator.Request) { r.Host, r.HasHost = "ALPHA.s3.local:443", true }, none},
		{"alpha.s3.local", "/k", func(r *evaluator.Request) { r.ForwardedHost, r.HasForwardedHost = "beta.s3.local", true }, evaluator.AmbiguityForwardedHost},
		{"alpha.s3.local", "/k", func(r *evaluator.Request) {
			r.ForwardedHost, r.HasForwardedHost = "alpha.s3.local, beta.s3.local.evil", true
		}, evaluator.AmbiguityForwardedHost},
		{"alpha.s3.local", "/k", func(r *evaluator.Request) { r.ForwardedHost, r.HasForwardedHost = "alpha.s3.local:443", true }, none},
		{"minio:9000", "/alpha/k", func(r *evaluator.Request) { r.ForwardedHost, r.HasForwardedHost = "s3.local", true }, none},
		{"minio:9000", "/k", func(r *evaluator.Request) { r.ForwardedHost, r.HasForwardedHost = "alpha.s3.local", true }, evaluator.AmbiguityForwardedHost},
		// The decoded key ("a") and the lower-cased second host ("lpha") share scratch
		// memory: the second reading must not read "alpha".
		{"alpha.s3.local", "/%61", func(r *evaluator.Request) { r.ForwardedHost, r.HasForwardedHost = "LPHA.s3.local", true }, evaluator.AmbiguityForwardedHost},
		{"alpha.s3.local", "/%61", func(r *evaluator.Request) { r.Host, r.HasHost = "LPHA.s3.local", true }, evaluator.AmbiguityHostMismatch},
		{"ALPHA.s3.local", "/k", func(r *evaluator.Request) { r.ForwardedHost, r.HasForwardedHost = "ALPHA.s3.local", true }, none},
	} {
		for _, method := range []string{"OPTIONS", "GET"} {
			r := &evaluator.Request{Method: method, Authority: c.authority, Path: c.path,
				Origin: "https://a.example", HasOrigin: true, RequestMethod: "GET", HasRequestMethod: true}
			if c.edit != nil {
				c.edit(r)
			}
			var d evaluator.Decision
			pol.Evaluate(r, &d)
			if d.Ambiguity != c.want {
				t.Errorf("%s %q %q: ambiguity %v, want %v", method, c.authority, c.path, d.Ambiguity, c.want)
				continue
			}
			if c.want == none {
				continue
			}
			switch {
			case method == "OPTIONS" && (d.Outcome != evaluator.Reply || d.Status != 403 || d.Reason != evaluator.ReasonAmbiguous || d.Rule >= 0):
				t.Errorf("%s %q %q: %v %v %d, want a 403 for an ambiguous bucket", method, c.authority, c.path, d.Outcome, d.Reason, d.Status)
			case method == "GET" && (d.Outcome != evaluator.Forward || !d.StripUpstream || d.Reason != evaluator.ReasonActualAmbiguous || len(d.Headers) != 0):
				t.Errorf("%s %q %q: %v %v strip %v, want forwarded and stripped", method, c.authority, c.path, d.Outcome, d.Reason, d.StripUpstream)
			}
		}
	}
}

// TestAttributionForwarded pins how the rule reads a Forwarded header (RFC 7239): every
// host= value, by the grammar or split at every "," and ";", names the bucket the authority
// does, or the request is ambiguous; a header the grammar refuses is ambiguous if it holds
// "host" anywhere.
func TestAttributionForwarded(t *testing.T) {
	pol := mustLoad(t, attributionConfig)
	none, amb := evaluator.AmbiguityNone, evaluator.AmbiguityForwarded
	for _, c := range []struct {
		authority, path, forwarded string
		want                       evaluator.Ambiguity
	}{
		// Well-formed, naming the same bucket or none.
		{"alpha.s3.local", "/k", "host=alpha.s3.local", none},
		{"alpha.s3.local", "/k", "for=192.0.2.43;proto=https;by=203.0.113.60", none},
		{"alpha.s3.local", "/k", "for=192.0.2.43:47011", none}, // ":" outside quotes is no host's concern
		{"alpha.s3.local", "/k", "", none},
		{"alpha.s3.local", "/k", " , ;, ", none},
		{"alpha.s3.local", "/k", `for="[2001:db8:cafe::17]:4711"`, none},
		{"alpha.s3.local", "/k", "Host=ALPHA.S3.LOCAL:443", none},
		{"alpha.s3.local", "/k", "HoSt=alpha.s3.local.", none},
		{"alpha.s3.local", "/k", `host="alpha.s3.local:8443";proto=https`, none},
		{"alpha.s3.local", "/k", "for=a;host=alpha.s3.local, for=b;host=alpha.s3.local", none},
		{"alpha.s3.local", "/k", "for=a ; host=alpha.s3.local ,for=b", none},
		{"alpha.s3.local", "/k", `for="x,y;z=\"q\""`, none}, // quotes, escapes, no host
		{"alpha.s3.local", "/k", "for=localhost", none},
		{"s3.local", "/alpha/k", "host=s3.local", none},
		{"s3.local", "/alpha/k", `host="[::1]:9000"`, none},
		{"s3.local", "/alpha/k", "host=127.0.0.1:9000", none},
		{"minio:9000", "/alpha/k", "host=s3.local", none},
		{"[::1]:9000", "/alpha/k", `host="[::1]"`, none},
		// Naming another bucket.
		{"alpha.s3.local", "/k", "host=beta.s3.local", amb},
		{"alpha.s3.local", "/k", "HOST=beta.s3.local", amb},
		{"alpha.s3.local", "/k", `for=192.0.2.43;host="beta.s3.local";proto=https`, amb},
		{"alpha.s3.local", "/k", "host=alpha.s3.local, host=beta.s3.local", amb},
		{"alpha.s3.local", "/k", "for=a,for=b;host=beta.s3.local:443", amb},
		{"alpha.s3.local", "/k", "host=beta.s3.local.evil.example", amb},
		{"s3.local", "/alpha/k", "host=beta.s3.local", amb},
		{"minio:9000", "/k", "host=alpha.s3.local", amb},
		{"s3.local", "/alpha/k", `host="[::1]:9000";host=beta.s3.local`, amb},
		// A host= value that is no host, or escaped: readers differ.
		{"alpha.s3.local", "/k", `host="alpha\.s3.local"`, amb},
		{"alpha.s3.local", "/k", `host="alpha.s3.local,beta.s3.local"`, amb},
		{"alpha.s3.local", "/k", `host="user@alpha.s3.local"`, amb},
		{"s3.local", "/alpha/k", `host="[::1"`, amb},
		// Quotes hiding a host from the grammar but not from a parser blind to them.
		{"alpha.s3.local", "/k", `for="x;host=beta.s3.local"`, amb},
		{"alpha.s3.local", "/k", `for="x,host=beta.s3.local"`, amb},
		{"alpha.s3.local", "/k", `for="x\",host=beta.s3.local"`, amb},
		{"alpha.s3.local", "/k", `for="x;host=alpha.s3.local"`, none},
		// Malformed: ambiguous when "host" appears anywhere, else ignored.
		{"alpha.s3.local", "/k", `host="alpha.s3.local`, amb},
		{"alpha.s3.local", "/k", "host = alpha.s3.local", amb},
		{"alpha.s3.local", "/k", "host=", amb},
		{"alpha.s3.local", "/k", "host=alpha.s3.local beta", amb},
		{"alpha.s3.local", "/k", `host="alpha.s3.local"x`, amb},
		{"alpha.s3.local", "/k", "for=x host=beta.s3.local", amb},
		{"alpha.s3.local", "/k", "for=\"x\x01\";h=HOST", amb},
		{"alpha.s3.local", "/k", "=alpha.s3.local;for=localhost", amb},
		{"alpha.s3.local", "/k", "for", none},
		{"alpha.s3.local", "/k", `for="unterminated`, none},
		{"alpha.s3.local", "/k", "proto=https by", none},
	} {
		for _, method := range []string{"OPTIONS", "GET"} {
			r := &evaluator.Request{Method: method, Authority: c.authority, Path: c.path,
				Origin: "https://a.example", HasOrigin: true, RequestMethod: "GET", HasRequestMethod: true,
				Forwarded: c.forwarded, HasForwarded: true}
			var d evaluator.Decision
			pol.Evaluate(r, &d)
			if d.Ambiguity != c.want {
				t.Errorf("%s %q %q, Forwarded %q: ambiguity %v, want %v", method, c.authority, c.path, c.forwarded, d.Ambiguity, c.want)
				continue
			}
			if c.want == none && d.Reason != evaluator.ReasonAllowed {
				t.Errorf("%s %q %q, Forwarded %q: %v, want allowed", method, c.authority, c.path, c.forwarded, d.Reason)
			}
			if c.want != none && d.Reason != evaluator.ReasonAmbiguous && d.Reason != evaluator.ReasonActualAmbiguous {
				t.Errorf("%s %q %q, Forwarded %q: %v, want ambiguous", method, c.authority, c.path, c.forwarded, d.Reason)
			}
		}
	}
}

// TestAttributionKeepStillStrips: upstreamCORSHeaders "keep" and unlistedBuckets "forward"
// trust the store for a bucket s3cors knows; for an ambiguous request they do not apply.
func TestAttributionKeepStillStrips(t *testing.T) {
	pol := mustLoad(t, `{"buckets": {"alpha": null}, "unlistedBuckets": "forward", "upstreamCORSHeaders": "keep",
	  "addressing": {"virtualHostSuffixes": ["s3.local"], "pathStyle": true}}`)
	var d evaluator.Decision
	pol.Evaluate(&evaluator.Request{Method: "GET", Authority: "s3.local", Path: "/beta%2Fk"}, &d)
	if d.Outcome != evaluator.Forward || !d.StripUpstream || d.Reason != evaluator.ReasonActualAmbiguous {
		t.Errorf("ambiguous actual request under keep/forward: %v %v strip %v", d.Outcome, d.Reason, d.StripUpstream)
	}
	pol.Evaluate(&evaluator.Request{Method: "OPTIONS", Authority: "s3.local", Path: "/beta%2Fk"}, &d)
	if d.Outcome != evaluator.Reply || d.Status != 403 {
		t.Errorf("ambiguous preflight under forward: %v %d, want a 403 reply", d.Outcome, d.Status)
	}
}

// FuzzAttribution asserts "granted ⇒ attribution unambiguous": whenever a preflight is
// allowed, every store reading modelled by storeBuckets, for every host the request offers
// (the authority, a Host header, each X-Forwarded-Host value), serves the bucket whose rules
// were granted, or no bucket at all. The models are written from the stores' behaviour, not
// from attribution.go. A default rule set grants every bucket, so any disagreement shows.
func FuzzAttribution(f *testing.F) {
	for _, tb := range tableSeeds(f) {
		for _, c := range tb.Cases {
			fh, _ := c.Request.Joined("X-Forwarded-Host")
			fw, _ := c.Request.Joined("Forwarded")
			f.Add(c.Request.Authority, c.Request.Path, "", fh, fw)
		}
	}
	f.Add("beta.s3.local.evil.example", "/alpha/k", "", "", "")
	f.Add("alpha.s3.local", "//beta.s3.local/k?x=://", "", "", "")
	f.Add("s3.local", "/alpha/%2e%2e;x/beta/k", "beta.s3.local", "alpha.s3.local", "")
	f.Add("alpha.s3.local", "/k", "", "", `for="x\",host=beta.s3.local"`)
	f.Add("alpha.s3.local", "/k", "", "", `for=a;host="alpha.s3.local", host="alph\a.s3.local"`)
	f.Add("s3.local", "/alpha/k", "", "", `for=1;HOST="[::1]:9000";proto=https, for=2;host=s3.local`)
	f.Add("alpha.s3.local", "/k", "", "", "host = beta.s3.local")
	f.Add("alpha.s3.local", "/%61", "", "LPHA.s3.local", "")
	pol, err := evaluator.Load([]byte(`{"buckets": {"alpha": [{"AllowedOrigins": ["https://a.example"], "AllowedMethods": ["GET"]}]},
	  "default": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}],
	  "addressing": {"virtualHostSuffixes": ["s3.local", "eu.s3.local", "example.com"], "pathStyle": true}}`))
	if err != nil {
		f.Fatal(err)
	}
	suffixes := []string{"eu.s3.local", "example.com", "s3.local"} // longest first, as a store tries them
	f.Fuzz(func(t *testing.T, authority, path, host, forwarded, rfc7239 string) {
		r := &evaluator.Request{Method: "OPTIONS", Authority: authority, Path: path,
			Origin: "https://a.example", HasOrigin: true, RequestMethod: "GET", HasRequestMethod: true,
			Host: host, HasHost: host != "", ForwardedHost: forwarded, HasForwardedHost: forwarded != "",
			Forwarded: rfc7239, HasForwarded: rfc7239 != ""}
		var d evaluator.Decision
		pol.Evaluate(r, &d)
		if d.Reason != evaluator.ReasonAllowed {
			if d.Status == 200 || len(d.Headers) > 0 && d.Outcome != evaluator.Reply {
				t.Fatalf("%q %q: %v with status %d", authority, path, d.Reason, d.Status)
			}
			return
		}
		hosts := []string{authority}
		if host != "" {
			hosts = append(hosts, host)
		}
		if forwarded != "" {
			for _, v := range strings.Split(forwarded, ",") {
				hosts = append(hosts, strings.TrimSpace(v))
			}
		}
		hosts = append(hosts, forwardedHosts(rfc7239)...)
		for _, h := range hosts {
			for model, b := range storeBuckets(h, path, suffixes) {
				if b != "" && b != d.Bucket {
					t.Fatalf("host %q path %q (Host %q, X-Forwarded-Host %q, Forwarded %q): granted bucket %q's rules, but a store reading %s serves bucket %q",
						authority, path, host, forwarded, rfc7239, d.Bucket, model, b)
				}
			}
		}
	})
}

// forwardedHosts returns the host= values that parsers of a Forwarded header may read: one
// that splits at every "," and ";" and strips quotes (keeping backslashes, or dropping
// them), and one that honours quoted strings and their escapes. Names and values are
// trimmed of spaces, as lenient parsers do.
func forwardedHosts(v string) []string {
	var out []string
	add := func(name, val string) {
		if strings.EqualFold(strings.TrimSpace(name), "host") {
			out = append(out, strings.TrimSpace(val))
		}
	}
	for _, piece := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ';' }) {
		if name, val, ok := strings.Cut(piece, "="); ok {
			val = strings.Trim(strings.TrimSpace(val), `"`)
			add(name, val)
			add(name, strings.ReplaceAll(val, `\`, ""))
		}
	}
	var name, val strings.Builder
	inName, inQuote := true, false
	for i := 0; i <= len(v); i++ {
		switch {
		case i == len(v) || !inQuote && (v[i] == ',' || v[i] == ';'):
			if !inName {
				add(name.String(), val.String())
			}
			name.Reset()
			val.Reset()
			inName = true
		case inName && v[i] == '=':
			inName = false
		case inName:
			name.WriteByte(v[i])
		case v[i] == '"':
			inQuote = !inQuote
		case inQuote && v[i] == '\\' && i+1 < len(v):
			i++
			val.WriteByte(v[i])
		default:
			val.WriteByte(v[i])
		}
	}
	return out
}

// storeBuckets returns, for each modelled store, the bucket it serves for host and target,
// "" for none (the service root, or a request it refuses).
//
//   - "anywhere" matches "."+suffix anywhere in the lower-cased host, port included, and takes
//     what precedes as the bucket (versitygw); a target starting with "//" and holding "://"
//     is read as "//host/path" (fasthttp); otherwise the bucket is the first segment of the
//     percent-decoded path.
//   - "normalising" strips the port and one trailing dot and matches suffixes at the end
//     only; otherwise it decodes the path, turns "\" into "/", drops ";" parameters,
//     resolves dot segments, merges slashes and takes the first segment.
func storeBuckets(host, target string, suffixes []string) map[string]string {
	out := map[string]string{}
	p, _, _ := strings.Cut(target, "?")
	if !strings.HasPrefix(p, "/") {
		return out
	}
	decoded, err := url.PathUnescape(p)
	if err != nil {
		return out
	}
	h := strings.ToLower(host)
	anywhere := ""
	if strings.HasPrefix(target, "//") && strings.Contains(target, "://") {
		h, _, _ = strings.Cut(target[2:], "/")
		h = strings.ToLower(h)
	}
	for _, s := range suffixes {
		if before, _, found := strings.Cut(h, "."+s); found && before != "" {
			anywhere = before
			break
		}
	}
	if anywhere == "" {
		anywhere, _, _ = strings.Cut(strings.TrimPrefix(decoded, "/"), "/")
	}
	out["anywhere"] = anywhere

	n := strings.ToLower(host)
	if i := strings.LastIndexByte(n, ':'); i >= 0 && !strings.HasSuffix(n, "]") {
		n = n[:i]
	}
	n = strings.TrimSuffix(n, ".")
	normalising := ""
	for _, s := range suffixes {
		if n != s && strings.HasSuffix(n, "."+s) {
			normalising = strings.TrimSuffix(n, "."+s)
			break
		}
	}
	if normalising == "" {
		segs := strings.Split(strings.ReplaceAll(decoded, "\\", "/"), "/")
		for i, seg := range segs {
			segs[i], _, _ = strings.Cut(seg, ";")
		}
		clean := pathpkg.Clean("/" + strings.Join(segs, "/"))
		normalising, _, _ = strings.Cut(strings.TrimPrefix(clean, "/"), "/")
	}
	out["normalising"] = normalising
	return out
}
