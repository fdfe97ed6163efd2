package gateway

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/s3cors/s3cors/internal/explain"
)

// TestExplainEndpointRefusesImpossibleQueries: the endpoint refuses what `s3cors explain`
// refuses (both run explain.Request), with 400 and an error naming the query parameter and
// its value, rather than explaining another request.
func TestExplainEndpointRefusesImpossibleQueries(t *testing.T) {
	g, _, _ := newTestGateway(t, routingConfig, http.HandlerFunc(storeStub))
	for _, tc := range []struct {
		query url.Values
		want  string
	}{
		{url.Values{"method": {"GET"}, "bucket": {"web/site"}}, `bucket "web/site": a bucket name cannot contain "/"`},
		{url.Values{"method": {"GET"}, "bucket": {"website#x"}}, `bucket "website#x": a bucket name cannot contain`},
		{url.Values{"method": {"GET"}, "bucket": {"web\x01site"}}, `bucket "web\x01site": a bucket name cannot contain`},
		{url.Values{"method": {"GET"}, "bucket": {"website"}, "origin": {"https://a\nb"}}, `origin "https://a\nb": a header value cannot contain control characters`},
		{url.Values{"method": {"OPTIONS"}, "bucket": {"website"}, "origin": {"https://a"}, "request-method": {"PUT\r"}}, `request-method "PUT\r": a header value`},
		{url.Values{"method": {"OPTIONS"}, "bucket": {"website"}, "origin": {"https://a"}, "request-method": {"PUT"}, "request-headers": {"x\x00"}}, `request-headers "x\x00": a header value`},
		{url.Values{"method": {"GET"}, "url": {"ftp://website.s3.localhost/a"}}, `url "ftp://website.s3.localhost/a": want an http:// or https:// URL`},
		{url.Values{"method": {"GET"}, "url": {"website.s3.localhost/a"}}, `url "website.s3.localhost/a": want an http:// or https:// URL`},
		{url.Values{"method": {"GET"}, "url": {"http://a/\x7f"}}, `url "http://a/\x7f": net/url: invalid control character in URL`},
		{url.Values{"method": {""}, "bucket": {"website"}}, `method "": a method is required`},
	} {
		rec := get(t, g.Debug(), "GET", "127.0.0.1:8080", "/debug/s3cors/explain?"+tc.query.Encode())
		var body struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%v: body %q: %v", tc.query, rec.Body.String(), err)
		}
		// The error quotes the value as Go does (%q), escapes and all.
		if rec.Code != http.StatusBadRequest || !strings.HasPrefix(body.Error, "explain: invalid query: ") || !strings.Contains(body.Error, tc.want) {
			t.Errorf("%v: %d %q, want 400 and %q", tc.query, rec.Code, body.Error, tc.want)
		}
	}
}

// TestExplainEndpointNotes: the report the endpoint serves carries the note that a lower-case
// "options" is not a preflight, as the CLI's does.
func TestExplainEndpointNotes(t *testing.T) {
	g, _, _ := newTestGateway(t, routingConfig, http.HandlerFunc(storeStub))
	for method, want := range map[string][]string{
		"options": {`method "options" is not a preflight: methods are case-sensitive, and a preflight is OPTIONS (upper case)`},
		"OPTIONS": {},
	} {
		q := url.Values{"method": {method}, "bucket": {"website"}, "key": {"a.txt"}, "origin": {"https://app.example"}, "request-method": {"GET"}}
		rec := get(t, g.Debug(), "GET", "127.0.0.1:8080", "/debug/s3cors/explain?"+q.Encode())
		var rep explain.Report
		if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil || rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %q: %v", method, rec.Code, rec.Body.String(), err)
		}
		if rep.Notes == nil || strings.Join(rep.Notes, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: notes %q, want %q", method, rep.Notes, want)
		}
	}
}
