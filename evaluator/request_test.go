package evaluator_test

import (
	"testing"

	"github.com/s3cors/s3cors/evaluator"
)

func TestRequestSetFillsOneFieldEach(t *testing.T) {
	seen := map[string]bool{}
	for f := range evaluator.RequestFields {
		name := f.Name()
		if name == "" || seen[name] {
			t.Fatalf("field %d: name %q empty or repeated", f, name)
		}
		seen[name] = true
		var r evaluator.Request
		r.Set(f, "v-"+name)
		want := map[evaluator.RequestField]evaluator.Request{
			evaluator.FieldMethod:         {Method: "v-:method"},
			evaluator.FieldAuthority:      {Authority: "v-:authority"},
			evaluator.FieldPath:           {Path: "v-:path"},
			evaluator.FieldOrigin:         {Origin: "v-origin", HasOrigin: true},
			evaluator.FieldRequestMethod:  {RequestMethod: "v-access-control-request-method", HasRequestMethod: true},
			evaluator.FieldRequestHeaders: {RequestHeaders: "v-access-control-request-headers", HasRequestHeaders: true},
			evaluator.FieldHost:           {Host: "v-host", HasHost: true},
			evaluator.FieldForwardedHost:  {ForwardedHost: "v-x-forwarded-host", HasForwardedHost: true},
			evaluator.FieldForwarded:      {Forwarded: "v-forwarded", HasForwarded: true},
		}[f]
		if r != want {
			t.Errorf("Set(%q): %+v, want %+v", name, r, want)
		}
	}
	if evaluator.RequestFields.Name() != "" {
		t.Errorf("RequestFields names a header")
	}
}
