package evaluator_test

import (
	"testing"

	"github.com/s3cors/s3cors/evaluator"
)

// TestReplyDetails pins the response-code details the wasm filter and the ext_proc server
// both send, so that access-log queries and alerts on %RESPONSE_CODE_DETAILS% keep working.
func TestReplyDetails(t *testing.T) {
	want := map[evaluator.Reason]string{
		evaluator.ReasonAllowed:              "s3cors_preflight_allowed",
		evaluator.ReasonNoOrigin:             "s3cors_preflight_denied_no_origin",
		evaluator.ReasonBucketNotFound:       "s3cors_preflight_denied_bucket_not_found",
		evaluator.ReasonNotEnabled:           "s3cors_preflight_denied_not_enabled",
		evaluator.ReasonMissingRequestMethod: "s3cors_preflight_denied_missing_request_method",
		evaluator.ReasonNotAllowed:           "s3cors_preflight_denied_not_allowed",
	}
	for r, w := range want {
		if got := r.ReplyDetails(); got != w {
			t.Errorf("details of a %s reply = %q, want %q", r, got, w)
		}
	}
	if got := evaluator.Reason(200).ReplyDetails(); got != "s3cors_preflight" {
		t.Errorf("details of an unknown reason = %q, want the fallback s3cors_preflight", got)
	}
}
