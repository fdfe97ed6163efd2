package configfile

import (
	"reflect"
	"strings"
	"testing"

	"github.com/s3cors/s3cors/evaluator"
)

func TestConfigJSONFormats(t *testing.T) {
	const asJSON = `{"buckets": {"site": {"CORSRules": [{"AllowedOrigins": ["https://a.example"], "AllowedMethods": ["GET"], "MaxAgeSeconds": 3000}]}, "yes": null, "0123": null}, "unlistedBuckets": "not-found"}`
	const asYAML = `
buckets:
  site:
    CORSRules:
      - AllowedOrigins: ["https://a.example"]
        AllowedMethods: [GET]
        MaxAgeSeconds: 3000
  yes: null     # YAML 1.1 readers would call this bucket "true"
  0123: ~       # and this one 83
unlistedBuckets: not-found
`
	want, err := evaluator.ParseConfig([]byte(asJSON))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, data string }{
		{"c.json", asJSON},
		{"c.yaml", asYAML},
		{"c.yml", asYAML},
		{"c.conf", asJSON},       // sniffed: '{'
		{"c.conf", asYAML},       // sniffed: not '{'
		{"c", "\ufeff" + asJSON}, // a byte-order mark before the '{'
	} {
		doc, err := JSON(tc.name, []byte(tc.data))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		got, err := evaluator.ParseConfig(doc)
		if err != nil {
			t.Errorf("%s: %v\n%s", tc.name, err, doc)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: parsed to %+v, want %+v\nJSON: %s", tc.name, got, want, doc)
		}
	}
}

func TestYAMLToJSON(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"key order and literal keys", "b: 1\non: 2\na: 3\n1e3: x\n", `{"b":1,"on":2,"a":3,"1e3":"x"}`},
		{"scalars", "s: 'x'\nn: 12\nf: 1.5\nt: true\nz: null\nd: 2024-01-02\nh: 0x10\n", `{"s":"x","n":12,"f":1.5,"t":true,"z":null,"d":"2024-01-02","h":16}`},
		{"xml string", "x: |\n  <CORSConfiguration><CORSRule/></CORSConfiguration>\n", `{"x":"\u003cCORSConfiguration\u003e\u003cCORSRule/\u003e\u003c/CORSConfiguration\u003e\n"}`},
		{"anchors and merge", "base: &r {AllowedMethods: [GET], MaxAgeSeconds: 1}\nsite: {<<: *r, MaxAgeSeconds: 2}\nfonts: *r\n",
			`{"base":{"AllowedMethods":["GET"],"MaxAgeSeconds":1},"site":{"MaxAgeSeconds":2,"AllowedMethods":["GET"]},"fonts":{"AllowedMethods":["GET"],"MaxAgeSeconds":1}}`},
		{"empty", "", `null`},
		{"comments only", "# nothing\n", `null`},
	} {
		got, err := yamlToJSON([]byte(tc.in))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if string(got) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

func TestYAMLToJSONErrors(t *testing.T) {
	bomb := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	for i, prev := 0, "a"; i < 8; i++ {
		name := string(rune('b' + i))
		bomb += name + ": &" + name + " [*" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + "]\n"
		prev = name
	}
	for _, tc := range []struct{ name, in, want string }{
		{"duplicate key", "buckets:\n  site: null\n  site: null\n", `line 3: key "site" given twice`},
		{"two documents", "a: 1\n---\nb: 2\n", "a second YAML document"},
		{"syntax", "buckets: [unclosed\n", "yaml:"},
		{"alias bomb", bomb, "expands to more than"},
		{"infinity", "x: .inf\n", "no JSON equivalent"},
		{"complex key", "? [a, b]\n: 1\n", "a mapping key must be a plain value"},
	} {
		_, err := yamlToJSON([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

func TestDetect(t *testing.T) {
	for doc, want := range map[string]Kind{
		"<CORSConfiguration/>":              KindBucketCORS,
		"\ufeff  [{}]":                      KindBucketCORS,
		"[]":                                KindBucketCORS,
		`[{"AllowedOrigins": ["*"]}]`:       KindBucketCORS,
		`[{"AllowedOrigins": ["*"],}]`:      KindBucketCORS, // the bucket parser reports the syntax
		`[{"buckets": {}}]`:                 KindConfig,     // a configuration in the wrong brackets
		`["*"]`:                             KindConfig,
		`{"CORSRules": []}`:                 KindBucketCORS,
		`{"buckets": {}, "CORSRules": []}`:  KindConfig, // a configuration with a stray key
		`{"buckets": {}}`:                   KindConfig,
		"CORSRules:\n  - AllowedOrigins: x": KindConfig, // YAML is read as a configuration
		"":                                  KindConfig,
	} {
		if got := Detect([]byte(doc)); got != want {
			t.Errorf("Detect(%q) = %q, want %q", doc, got, want)
		}
	}
}
