package configfile

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// FuzzYAMLToJSON: any input converts to valid JSON or fails with an error, never a panic; and
// JSON (a subset of YAML) converts to the same value.
func FuzzYAMLToJSON(f *testing.F) {
	for _, s := range []string{
		`{"buckets": {"site": {"CORSRules": [{"AllowedOrigins": ["https://a.example"], "AllowedMethods": ["GET"]}]}}}`,
		"buckets:\n  site:\n    CORSRules:\n      - AllowedOrigins: [\"https://c.example\"]\n        AllowedMethods: [GET]\n",
		`{"buckets": {"site": {"CORSRules": [{"AllowedOrigins": ["https://*.*.example"], "AllowedMethods": ["PATCH"]}]}}}`,
		"a: &x [1, 2]\nb: *x\nc: {<<: {d: 1}}\n",
		"- 1\n- 'two'\n- ~\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := yamlToJSON([]byte(in))
		if err != nil {
			return
		}
		var v any
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("%q converted to invalid JSON %q: %v", in, out, err)
		}
		var direct any
		if json.Unmarshal([]byte(in), &direct) == nil && !strings.Contains(in, "\t") && !reflect.DeepEqual(direct, v) {
			t.Fatalf("JSON %q read as YAML gives %s, as JSON %v", in, out, direct)
		}
	})
}
