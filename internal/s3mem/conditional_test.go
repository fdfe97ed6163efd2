package s3mem

import (
	"strings"
	"testing"
)

// TestConditionalWrites: If-None-Match: * creates only; If-Match overwrites only the ETag it
// names; a failed condition is S3's 412 PreconditionFailed (404 NoSuchKey for If-Match on a
// missing object) and leaves the object alone.
func TestConditionalWrites(t *testing.T) {
	s := newStore()
	const host = "localhost"
	if r := do(t, s, "PUT", host, "/website/state", "v1", map[string]string{"If-Match": `"abc"`}); r.StatusCode != 404 || !strings.Contains(r.body, "<Code>NoSuchKey</Code>") {
		t.Fatalf("If-Match on a missing object: %d %s", r.StatusCode, r.body)
	}
	r := do(t, s, "PUT", host, "/website/state", "v1", map[string]string{"If-None-Match": "*"})
	if r.StatusCode != 200 {
		t.Fatalf("If-None-Match: * on a missing object: %d %s", r.StatusCode, r.body)
	}
	v1 := r.Header.Get("ETag")
	if r := do(t, s, "PUT", host, "/website/state", "v2", map[string]string{"If-None-Match": "*"}); r.StatusCode != 412 || !strings.Contains(r.body, "<Code>PreconditionFailed</Code>") || !strings.Contains(r.body, "<Condition>If-None-Match</Condition>") {
		t.Fatalf("If-None-Match: * on an existing object: %d %s", r.StatusCode, r.body)
	}
	if r := do(t, s, "PUT", host, "/website/state", "v2", map[string]string{"If-Match": v1}); r.StatusCode != 200 {
		t.Fatalf("If-Match with the current ETag: %d %s", r.StatusCode, r.body)
	}
	if r := do(t, s, "PUT", host, "/website/state", "v3", map[string]string{"If-Match": v1}); r.StatusCode != 412 || !strings.Contains(r.body, "<Condition>If-Match</Condition>") {
		t.Fatalf("If-Match with an old ETag: %d %s", r.StatusCode, r.body)
	}
	if o, _ := s.Get("website", "state"); string(o.Body) != "v2" {
		t.Fatalf("after the refused writes the object is %q, want v2", o.Body)
	}
}
