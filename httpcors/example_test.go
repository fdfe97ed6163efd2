package httpcors_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/s3cors/s3cors/httpcors"
)

// Load a configuration and wrap an S3 API handler: a preflight is answered by the
// middleware, an actual request reaches the handler and its response gets S3's CORS headers.
func ExampleLoad() {
	m, err := httpcors.Load([]byte(`{"buckets": {"site": {"CORSRules": [{
	  "AllowedOrigins": ["https://app.example.com"], "AllowedMethods": ["GET"]}]}}}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	s3API := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*") // the store's own: removed
		fmt.Fprintln(w, "object bytes")
	})
	h := m.Handler(s3API)

	pre := httptest.NewRequest("OPTIONS", "http://s3.local/site/cat.jpg", nil)
	pre.Header.Set("Origin", "https://evil.example")
	pre.Header.Set("Access-Control-Request-Method", "GET")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, pre)
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))

	get := httptest.NewRequest("GET", "http://s3.local/site/cat.jpg", nil)
	get.Header.Set("Origin", "https://app.example.com")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, get)
	fmt.Println(rec.Code, rec.Header().Get("Access-Control-Allow-Origin"), rec.Header().Get("Access-Control-Allow-Methods"))
	fmt.Print(rec.Body.String())

	_, err = httpcors.Load([]byte(`{"buckets": {"site": {"CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["FETCH"]}]}}}`))
	fmt.Println(err)
	// Output:
	// 403 application/xml
	// 200 https://app.example.com GET
	// object bytes
	// evaluator: invalid configuration
	//   buckets["site"].CORSRules[0].AllowedMethods[0]: InvalidRequest: Found unsupported HTTP method in CORS config. Unsupported method is FETCH
}
