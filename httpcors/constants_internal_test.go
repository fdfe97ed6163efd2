package httpcors

import (
	"testing"

	"github.com/s3cors/s3cors/evaluator"
)

// TestConstantsAreFound pins what replies rely on to copy only the ids and the
// Allow-Headers echo: a matched rule's headers are all in its fixed set (prepared slices,
// plus the request's Origin), and every other value an error reply holds (Content-Type,
// Connection) is one of the constants. A miss would still answer correctly, by copying.
func TestConstantsAreFound(t *testing.T) {
	m, err := Load([]byte(`{"buckets": {"site": {"CORSRules": [
	  {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 60},
	  {"AllowedOrigins": ["https://app.example.com"], "AllowedMethods": ["PUT"], "AllowedHeaders": ["*"]}]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	st := m.state.Load()
	const app = "https://app.example.com"
	requests := []evaluator.Request{
		{Method: "OPTIONS", Path: "/site/k", Origin: app, HasOrigin: true, RequestMethod: "GET", HasRequestMethod: true},
		{Method: "OPTIONS", Path: "/site/k", Origin: app, HasOrigin: true, RequestMethod: "PUT", HasRequestMethod: true,
			RequestHeaders: "x-a", HasRequestHeaders: true},
		{Method: "GET", Path: "/site/k", Origin: app, HasOrigin: true},
		{Method: "PUT", Path: "/site/k", Origin: app, HasOrigin: true},
		{Method: "OPTIONS", Path: "/site/k", Origin: app, HasOrigin: true, RequestMethod: "POST", HasRequestMethod: true},
		{Method: "OPTIONS", Path: "/site/k", HasOrigin: false},
	}
	dynamic := map[string]bool{evaluator.HeaderRequestID: true, evaluator.HeaderID2: true,
		evaluator.HeaderContentLength: true, evaluator.HeaderAllowHeaders: true}
	var d evaluator.Decision
	for i := range requests {
		r := &requests[i]
		st.policy.Evaluate(r, &d)
		if len(d.Headers) == 0 {
			t.Fatalf("request %d: no headers (%v)", i, d.Reason)
		}
		for _, hd := range d.Headers {
			if dynamic[hd.Name] || hd.Name == evaluator.HeaderAllowOrigin && hd.Value == app {
				continue
			}
			found := false
			if d.HeaderSet >= 0 {
				for _, f := range st.fixed[d.HeaderSet].headers {
					found = found || f.key == hd.Name && f.value[0] == hd.Value
				}
			} else {
				v := constant(hd.Value)
				found = v != nil && v[0] == hd.Value
			}
			if !found {
				t.Errorf("request %d (%v): %s: %q is neither in the rule's fixed set nor a constant", i, d.Reason, hd.Name, hd.Value)
			}
		}
	}
}
