package manifest

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestToYAMLKeepsOrderAndQuotesWhatNeedsIt(t *testing.T) {
	in := `{
  "buckets": {
    "website": {"CORSRules": [{"ID": "upload", "AllowedOrigins": ["https://*.example.com", "*"],
      "AllowedMethods": ["PUT", "GET"], "AllowedHeaders": ["x-amz-meta-*", "on", "null", "12"],
      "MaxAgeSeconds": 3000}]},
    "private": null,
    "legacy": "<CORSConfiguration>\n  <CORSRule><AllowedOrigin>*</AllowedOrigin></CORSRule>\n</CORSConfiguration>\n",
    "fonts": []
  },
  "addressing": {"virtualHostSuffixes": ["s3.localhost"], "pathStyle": true},
  "odd": ["- dash", "key: value", "#comment", " lead", "tab\there", "\u0085nel", "\u2028", "é", ""]
}`
	got, err := toYAML([]byte(in), 4)
	if err != nil {
		t.Fatal(err)
	}
	want := `    buckets:
      website:
        CORSRules:
          - ID: upload
            AllowedOrigins:
              - https://*.example.com
              - "*"
            AllowedMethods:
              - PUT
              - GET
            AllowedHeaders:
              - x-amz-meta-*
              - "on"
              - "null"
              - "12"
            MaxAgeSeconds: 3000
      private: null
      legacy: |
        <CORSConfiguration>
          <CORSRule><AllowedOrigin>*</AllowedOrigin></CORSRule>
        </CORSConfiguration>
      fonts: []
    addressing:
      virtualHostSuffixes:
        - s3.localhost
      pathStyle: true
    odd:
      - "- dash"
      - "key: value"
      - "#comment"
      - " lead"
      - "tab\there"
      - "\u0085nel"
      - "\u2028"
      - "é"
      - ""
`
	if got != want {
		t.Errorf("toYAML:\n%s\nwant:\n%s", got, want)
	}
}

func TestToYAMLNestedSequences(t *testing.T) {
	in := `[[1, [2, {}]], {"a": [[]]}, [], "x\ny", "x\n", "x\n\n"]`
	got, err := toYAML([]byte(in), 0)
	if err != nil {
		t.Fatal(err)
	}
	// Only the shape matters here; toYAML has already proved it reads back identically.
	if !strings.HasPrefix(got, "- - 1\n") {
		t.Errorf("nested sequence rendered as:\n%s", got)
	}
}

func TestToYAMLRejectsNonJSON(t *testing.T) {
	for _, in := range []string{`{"a": 1} {"b": 2}`, `{"a":`, `nope`} {
		if _, err := toYAML([]byte(in), 0); err == nil {
			t.Errorf("toYAML(%q) succeeded", in)
		}
	}
}

// FuzzToYAML checks the invariant every manifest relies on: any JSON document the evaluator
// could be given renders as YAML that reads back as the same document.
func FuzzToYAML(f *testing.F) {
	for _, s := range []string{
		`{"buckets": {"b": {"CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]}}}`,
		`{"buckets": {"x": "<CORSConfiguration>\n</CORSConfiguration>"}, "default": null}`,
		`{"k": ["yes", "No", "~", "0x1F", "1:20", "-", "?", "a:", ":a", "a #b", "", " ", "\t"]}`,
		`{"n": [1e3, -0, 1.50, 123456789012345678, 0.1]}`,
		`{"": {"": [[], {}]}}`,
		`"just a string"`,
		`[["\r\n", "\u00a0", "\ufeff", "\ud83d\ude00"]]`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var v any
		if json.Unmarshal([]byte(in), &v) != nil {
			return // not a JSON document the generator would accept
		}
		n, err := parseJSON([]byte(in))
		if err != nil || hasDuplicateKeys(n) {
			return // duplicate keys are ambiguous in both languages; the evaluator refuses them
		}
		for _, r := range yamlReaders {
			if _, err := r.read([]byte(in)); err != nil {
				return // a reader refuses the document itself (depth, size, huge integers)
			}
		}
		if _, err := toYAML([]byte(in), 2); err != nil {
			t.Fatalf("toYAML(%q): %v", in, err)
		}
	})
}

func hasDuplicateKeys(n *node) bool {
	seen := map[string]bool{}
	for _, k := range n.keys {
		if seen[k] {
			return true
		}
		seen[k] = true
	}
	for _, v := range n.vals {
		if hasDuplicateKeys(v) {
			return true
		}
	}
	return false
}

func TestEnvoyWasmCarriesAwkwardCharacters(t *testing.T) {
	// U+2028, U+0085 and a byte-order mark are legal raw inside JSON strings but not safe in a
	// YAML literal block; a tab is not legal raw in JSON at all.
	cfg := []byte("{\"buckets\": {\"b\": {\"CORSRules\": [{\"ID\": \"a\u2028b\u0085c\ufeffd\\t\", \"AllowedOrigins\": [\"*\"], \"AllowedMethods\": [\"GET\"]}]}}}")
	out, err := Generate(EnvoyWasm, cfg, Options{Hosts: []string{"s3.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := embeddedConfigReadsBack(EnvoyWasm, out, cfg, nil); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsRune(string(out), 0x2028) {
		t.Error("a raw U+2028 reached the bootstrap")
	}
}

func TestEmbeddedConfigReadsBackCatchesADifference(t *testing.T) {
	cfg := []byte(`{"buckets": {"b": null}}`)
	for _, target := range []Target{EnvoyWasm, IstioWasmPlugin, IstioExtProc} {
		var o Options
		if target == EnvoyWasm {
			o.Hosts = []string{"s3.example.com"} // the configuration names no suffix
		}
		out, err := Generate(target, cfg, o)
		if err != nil {
			t.Fatal(err)
		}
		if err := embeddedConfigReadsBack(target, out, []byte(`{"buckets": {"c": null}}`), nil); err == nil {
			t.Errorf("%s: a different configuration reads back as the same", target)
		}
		if err := embeddedConfigReadsBack(target, out, cfg, nil); err != nil {
			t.Errorf("%s: %v", target, err)
		}
	}
}
