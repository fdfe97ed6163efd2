package evaluator

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// The evaluator's unsafe strings (unsafe.String over a Decision's scratch: the decoded bucket
// and key, the requested header names, the reply ids and body) are valid until the next
// Evaluate on the same Decision, and nothing else holds them; callers only read them (the
// next Evaluate reuses the constant text of an error body in place). The test fails if a later
// append within one Evaluate overwrites an earlier string, if the Policy keeps a view of a
// Decision's scratch, or if what one Evaluate leaves in the scratch leaks into the next.

// scratchPolicy addresses virtual-host and path-style buckets; its rule echoes the origin and
// the requested header names, so every kind of scratch string appears in one preflight.
const scratchPolicy = `{"buckets": {"photos": [{"AllowedOrigins": ["https://*.example"], "AllowedMethods": ["PUT"], "AllowedHeaders": ["*"]}]},
  "addressing": {"virtualHostSuffixes": ["s3.example.test"], "pathStyle": true}}`

// scratchRequests are a preflight whose bucket is lower-cased into the scratch and whose key
// is percent-decoded after it, and two denied ones with different error bodies (which carry
// the ids).
var scratchRequests = []Request{{
	Method: "OPTIONS", Authority: "PHOTOS.s3.example.test", Path: "/a%20b/%C3%A9t%C3%A9.jpg?x=1",
	Origin: "https://app.example", HasOrigin: true,
	RequestMethod: "PUT", HasRequestMethod: true,
	RequestHeaders: "X-Amz-Date, Content-Type,x-amz-meta-a", HasRequestHeaders: true,
}, {
	Method: "OPTIONS", Authority: "s3.example.test", Path: "/photos/k%2Fv",
	Origin: "https://evil.test", HasOrigin: true, RequestMethod: "DELETE", HasRequestMethod: true,
}, {
	Method: "OPTIONS", Authority: "s3.example.test", Path: "/nobucket",
	Origin: "https://app.example", HasOrigin: true, RequestMethod: "GET", HasRequestMethod: true,
}}

// copied is a Decision's result in memory of its own, ids left out (they are random).
func copied(d *Decision) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s %d %q %q\n", d.Outcome, d.Reason, d.Status, d.Bucket, d.Key)
	for _, h := range d.Headers {
		if h.Name == HeaderRequestID || h.Name == HeaderID2 {
			continue
		}
		b.WriteString(h.Name + ": " + h.Value + "\n")
	}
	body := string(d.Body)
	if id := d.scratch.ids; id[0] != "" {
		body = strings.NewReplacer(id[0], "<request-id>", id[1], "<host-id>").Replace(body)
	}
	b.WriteString(body)
	return b.String()
}

// scribble overwrites every byte of d's scratch buffers, up to their capacity.
func scribble(d *Decision) {
	s := &d.scratch
	for _, b := range [][]byte{s.addr[:cap(s.addr)], s.acrh[:cap(s.acrh)], s.body[:cap(s.body)], s.requestID[:], s.hostID[:]} {
		for i := range b {
			b[i] = 0xA5
		}
	}
}

func TestScratchStringsLiveUntilTheNextEvaluate(t *testing.T) {
	pol, err := Load([]byte(scratchPolicy))
	if err != nil {
		t.Fatal(err)
	}
	// Both strings of the first request live in the scratch: the key's decoding came after
	// the bucket's lower-casing and must not have moved or overwritten it.
	var d Decision
	pol.Evaluate(&scratchRequests[0], &d)
	if d.Bucket != "photos" || d.Key != "a b/été.jpg" || d.AllowHeaders() != "x-amz-date, content-type, x-amz-meta-a" {
		t.Fatalf("bucket %q key %q allow-headers %q", d.Bucket, d.Key, d.AllowHeaders())
	}
	pol.Evaluate(&scratchRequests[1], &d)
	if d.Status != 403 || d.Key != "k/v" || !bytes.Contains(d.Body, []byte(d.RequestID())) {
		t.Fatalf("denied preflight: status %d key %q body %s", d.Status, d.Key, d.Body)
	}

	// The Policy holds nothing of a Decision: with one Decision's scratch scribbled over,
	// another gets the same results.
	var want []string
	for i := range scratchRequests {
		pol.Evaluate(&scratchRequests[i], &d)
		want = append(want, copied(&d))
		scribble(&d)
		d = Decision{}
	}
	for i := range scratchRequests {
		var fresh Decision
		pol.Evaluate(&scratchRequests[i], &fresh)
		if got := copied(&fresh); got != want[i] {
			t.Errorf("request %d after scribbling over an earlier Decision:\n got %s\nwant %s", i, got, want[i])
		}
	}

	// A Decision reused across different requests (what the adapters do) gives each the
	// result a fresh one would: what the previous Evaluate left in the scratch never shows.
	for _, i := range []int{0, 1, 2, 1, 0, 2, 0} {
		pol.Evaluate(&scratchRequests[i], &d)
		if got := copied(&d); got != want[i] {
			t.Errorf("request %d on a reused Decision:\n got %s\nwant %s", i, got, want[i])
		}
	}
}

// TestOtherReadingsDoNotGrowTheScratch: every other reading of a request (one per
// X-Forwarded-Host or Forwarded host) decodes the path again into the scratch; it is cut back
// after each comparison, so a request packing many hosts and a long encoded key leaves the
// scratch about as large as one reading needs. And a request needing more than
// maxOtherReadings readings is ambiguous without making them.
func TestOtherReadingsDoNotGrowTheScratch(t *testing.T) {
	p, err := Load([]byte(scratchPolicy))
	if err != nil {
		t.Fatal(err)
	}
	path := "/photos/" + strings.Repeat("%41", 6000)
	var d Decision
	for _, n := range []int{maxOtherReadings, maxOtherReadings + 1} {
		r := Request{Method: "GET", Authority: "s3.example.test", Path: path, Origin: "https://app.example", HasOrigin: true,
			ForwardedHost: strings.TrimSuffix(strings.Repeat("s3.example.test,", n), ","), HasForwardedHost: true}
		p.Evaluate(&r, &d)
		want := AmbiguityNone
		if n > maxOtherReadings {
			want = AmbiguityForwardedHost
		}
		if d.Ambiguity != want {
			t.Errorf("%d X-Forwarded-Host values naming the same bucket: ambiguity %v, want %v", n, d.Ambiguity, want)
		}
		if want == AmbiguityNone && (d.Bucket != "photos" || d.Key != strings.Repeat("A", 6000)) {
			t.Errorf("%d values: bucket %q, key of %d bytes; want photos and the decoded key", n, d.Bucket, len(d.Key))
		}
		// Own reading (6,006 bytes decoded) plus one other reading at a time.
		if c := cap(d.scratch.addr); c > 4*len(path) {
			t.Errorf("%d values: scratch grew to %d bytes for a %d-byte path", n, c, len(path))
		}
	}
	// Forwarded, with the quote-blind second pass: the same bound.
	r := Request{Method: "GET", Authority: "s3.example.test", Path: path, Origin: "https://app.example", HasOrigin: true,
		Forwarded: `for="x";` + strings.Repeat("host=s3.example.test;", 20), HasForwarded: true}
	p.Evaluate(&r, &d)
	if d.Ambiguity != AmbiguityForwarded {
		t.Errorf("20 Forwarded hosts read twice (40 readings): ambiguity %v, want %v", d.Ambiguity, AmbiguityForwarded)
	}
	if c := cap(d.scratch.addr); c > 4*len(path) {
		t.Errorf("Forwarded: scratch grew to %d bytes for a %d-byte path", c, len(path))
	}
}
