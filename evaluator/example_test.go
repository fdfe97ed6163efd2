package evaluator_test

import (
	"fmt"

	"github.com/s3cors/s3cors/evaluator"
)

// Load a configuration once, then decide requests with a reused Decision: a preflight is
// answered with S3's status and headers; an actual request gets a response plan, the edits
// to make to the store's response.
func Example() {
	pol, err := evaluator.Load([]byte(`{"buckets": {"site": {"CORSRules": [{
	  "AllowedOrigins": ["https://app.example.com"], "AllowedMethods": ["GET", "PUT"],
	  "AllowedHeaders": ["content-type"], "MaxAgeSeconds": 3000}]}}}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	var d evaluator.Decision
	pol.Evaluate(&evaluator.Request{
		Method: "OPTIONS", Authority: "s3.local", Path: "/site/photos/cat.jpg",
		Origin: "https://app.example.com", HasOrigin: true,
		RequestMethod: "PUT", HasRequestMethod: true,
		RequestHeaders: "Content-Type", HasRequestHeaders: true,
	}, &d)
	fmt.Println(d.Outcome == evaluator.Reply, d.Status, d.Reason)
	for _, h := range d.Headers {
		if h.Name == evaluator.HeaderRequestID || h.Name == evaluator.HeaderID2 {
			h.Value = fmt.Sprintf("(%d random characters)", len(h.Value))
		}
		fmt.Printf("%s: %s\n", h.Name, h.Value)
	}

	pol.Evaluate(&evaluator.Request{
		Method: "GET", Authority: "s3.local", Path: "/site/photos/cat.jpg",
		Origin: "https://app.example.com", HasOrigin: true,
	}, &d)
	plan := d.Response()
	fmt.Println(d.Outcome == evaluator.Decorate, "strip:", plan.Strip, "merge Vary:", plan.Vary)
	for _, h := range plan.Set {
		fmt.Printf("set %s: %s\n", h.Name, h.Value)
	}
	fmt.Println("Vary with the store's:", evaluator.MergeVary([]string{"Accept-Encoding"}))
	// Output:
	// true 200 allowed
	// x-amz-id-2: (76 random characters)
	// x-amz-request-id: (16 random characters)
	// Access-Control-Allow-Origin: https://app.example.com
	// Access-Control-Allow-Methods: GET, PUT
	// Access-Control-Allow-Headers: content-type
	// Access-Control-Max-Age: 3000
	// Access-Control-Allow-Credentials: true
	// Vary: Origin, Access-Control-Request-Headers, Access-Control-Request-Method
	// Content-Length: 0
	// true strip: true merge Vary: true
	// set Access-Control-Allow-Origin: https://app.example.com
	// set Access-Control-Allow-Methods: GET, PUT
	// set Access-Control-Max-Age: 3000
	// set Access-Control-Allow-Credentials: true
	// Vary with the store's: Accept-Encoding, Origin, Access-Control-Request-Headers, Access-Control-Request-Method
}
