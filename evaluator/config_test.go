package evaluator_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/s3cors/s3cors/evaluator"
)

func ptr[T any](v T) *T { return &v }

const allForms = `{
  "buckets": {
    "website": {"CORSRules": [
      {"ID": "web", "AllowedOrigins": ["https://www.example.com"], "AllowedMethods": ["GET", "HEAD"], "AllowedHeaders": ["*"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 3000}
    ]},
    "fonts": [
      {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"], "AllowedHeaders": [], "ExposeHeaders": []}
    ],
    "legacy": "<?xml version=\"1.0\"?><!-- pasted from GetBucketCors --><CORSConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n  <CORSRule>\n    <AllowedOrigin>http://a.example/?x=1&amp;y=&lt;2&gt;</AllowedOrigin>\n    <AllowedMethod>PUT</AllowedMethod>\n    <AllowedOrigin><![CDATA[http://b.example]]></AllowedOrigin>\n    <MaxAgeSeconds> 10 </MaxAgeSeconds>\n  </CORSRule>\n</CORSConfiguration>",
    "plain": "<CORSConfiguration><CORSRule><AllowedOrigin></AllowedOrigin><AllowedMethod>DELETE</AllowedMethod></CORSRule></CORSConfiguration>",
    "private": null
  },
  "default": {"CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]},
  "unlistedBuckets": "not-found",
  "addressing": {"virtualHostSuffixes": ["S3.Example.com"], "pathStyle": false},
  "upstreamCORSHeaders": "keep"
}`

func TestParseConfigForms(t *testing.T) {
	cfg, err := evaluator.ParseConfig([]byte(allForms))
	if err != nil {
		t.Fatal(err)
	}
	wantOrder := []string{"website", "fonts", "legacy", "plain", "private"}
	if !reflect.DeepEqual(cfg.BucketOrder, wantOrder) {
		t.Errorf("BucketOrder = %q, want %q", cfg.BucketOrder, wantOrder)
	}
	want := map[string]*evaluator.BucketCORS{
		"website": {Form: evaluator.FormAWSJSON, Rules: []evaluator.Rule{{
			ID: ptr("web"), AllowedOrigins: []string{"https://www.example.com"}, AllowedMethods: []string{"GET", "HEAD"},
			AllowedHeaders: []string{"*"}, ExposeHeaders: []string{"ETag"}, MaxAgeSeconds: ptr(int64(3000)),
		}}},
		// Empty arrays are not kept: S3 stores no empty list, GetBucketCors shows none.
		"fonts": {Form: evaluator.FormConsoleJSON, Rules: []evaluator.Rule{{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"GET"}}}},
		"legacy": {Form: evaluator.FormXML, Rules: []evaluator.Rule{{
			AllowedOrigins: []string{"http://a.example/?x=1&y=<2>", "http://b.example"}, AllowedMethods: []string{"PUT"}, MaxAgeSeconds: ptr(int64(10)),
		}}},
		"plain":   {Form: evaluator.FormXML, Rules: []evaluator.Rule{{AllowedOrigins: []string{""}, AllowedMethods: []string{"DELETE"}}}},
		"private": {Form: evaluator.FormNone},
	}
	for name, w := range want {
		if got := cfg.Buckets[name]; !reflect.DeepEqual(got, w) {
			t.Errorf("bucket %q = %+v, want %+v", name, got, w)
		}
	}
	if cfg.Default == nil || cfg.Default.Form != evaluator.FormAWSJSON || len(cfg.Default.Rules) != 1 {
		t.Errorf("Default = %+v", cfg.Default)
	}
	if cfg.UnlistedBuckets != evaluator.UnlistedNotFound || cfg.UpstreamCORSHeaders != evaluator.UpstreamKeep {
		t.Errorf("UnlistedBuckets %q UpstreamCORSHeaders %q", cfg.UnlistedBuckets, cfg.UpstreamCORSHeaders)
	}
	if !reflect.DeepEqual(cfg.Addressing, evaluator.Addressing{VirtualHostSuffixes: []string{"S3.Example.com"}, PathStyle: false}) {
		t.Errorf("Addressing = %+v", cfg.Addressing)
	}
}

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := evaluator.ParseConfig([]byte(`{"buckets": {}, "default": null}`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Default != nil || cfg.UnlistedBuckets != evaluator.UnlistedNotEnabled || cfg.UpstreamCORSHeaders != evaluator.UpstreamStrip ||
		!cfg.Addressing.PathStyle || len(cfg.Addressing.VirtualHostSuffixes) != 0 || len(cfg.Buckets) != 0 {
		t.Errorf("defaults: %+v", cfg)
	}
}

func TestParseBucketCORSForms(t *testing.T) {
	rule := evaluator.Rule{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"GET"}}
	for _, c := range []struct {
		doc  string
		form evaluator.Form
	}{
		{`{"CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]}`, evaluator.FormAWSJSON},
		{` [{"AllowedMethods": ["GET"], "AllowedOrigins": ["*"]}]`, evaluator.FormConsoleJSON},
		{`<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>`, evaluator.FormXML},
		{"\n<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CORSConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>\n", evaluator.FormXML},
	} {
		b, err := evaluator.ParseBucketCORS([]byte(c.doc))
		if err != nil {
			t.Errorf("%s: %v", c.doc, err)
			continue
		}
		if b.Form != c.form || !reflect.DeepEqual(b.Rules, []evaluator.Rule{rule}) {
			t.Errorf("%s: got %+v, want form %v rules %+v", c.doc, b, c.form, rule)
		}
	}
}

func TestRenderGetBucketCors(t *testing.T) {
	b, err := evaluator.ParseBucketCORS([]byte(`[
	  {"MaxAgeSeconds": 0, "ExposeHeaders": ["x-amz-server-side-encryption", "ETag"], "AllowedOrigins": ["http://www.example.com", "*"],
	   "AllowedMethods": ["PUT", "GET"], "AllowedHeaders": ["x-AMZ-server-SIDE-encryption"], "ID": "a<b&c\"d"},
	  {"AllowedOrigins": ["\u00e9t\u00e9\r\n"], "AllowedMethods": ["HEAD"]}]`))
	if err != nil {
		t.Fatal(err)
	}
	wantXML := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<CORSConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
		`<CORSRule><ID>a&lt;b&amp;c"d</ID><AllowedHeader>x-AMZ-server-SIDE-encryption</AllowedHeader><AllowedMethod>PUT</AllowedMethod><AllowedMethod>GET</AllowedMethod>` +
		`<AllowedOrigin>http://www.example.com</AllowedOrigin><AllowedOrigin>*</AllowedOrigin><ExposeHeader>x-amz-server-side-encryption</ExposeHeader><ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>0</MaxAgeSeconds></CORSRule>` +
		"<CORSRule><AllowedMethod>HEAD</AllowedMethod><AllowedOrigin>\u00e9t\u00e9&#13;\n</AllowedOrigin></CORSRule></CORSConfiguration>"
	if got := string(b.XML()); got != wantXML {
		t.Errorf("XML:\n%s\nwant:\n%s", got, wantXML)
	}
	wantJSON := `{
    "CORSRules": [
        {
            "ID": "a<b&c\"d",
            "AllowedHeaders": [
                "x-AMZ-server-SIDE-encryption"
            ],
            "AllowedMethods": [
                "PUT",
                "GET"
            ],
            "AllowedOrigins": [
                "http://www.example.com",
                "*"
            ],
            "ExposeHeaders": [
                "x-amz-server-side-encryption",
                "ETag"
            ],
            "MaxAgeSeconds": 0
        },
        {
            "AllowedMethods": [
                "HEAD"
            ],
            "AllowedOrigins": [
                "été\r\n"
            ]
        }
    ]
}
`
	if got := string(b.JSON()); got != wantJSON {
		t.Errorf("JSON:\n%s\nwant:\n%s", got, wantJSON)
	}
	console := string(b.ConsoleJSON())
	if !strings.HasPrefix(console, "[\n    {\n        \"ID\": ") || !strings.HasSuffix(console, "    }\n]\n") {
		t.Errorf("ConsoleJSON:\n%s", console)
	}
	none := &evaluator.BucketCORS{Form: evaluator.FormNone}
	if none.XML() != nil || string(none.JSON()) != "null\n" || string(none.ConsoleJSON()) != "null\n" {
		t.Errorf("FormNone renders %q %q %q", none.XML(), none.JSON(), none.ConsoleJSON())
	}
}

// TestRoundTrips is what `s3cors convert` relies on: XML -> JSON -> XML is identical, and
// every rendering parses back to the same rules.
func TestRoundTrips(t *testing.T) {
	docs := []string{
		`<CORSConfiguration><CORSRule><ID>r1</ID><AllowedOrigin>https://*.example.com</AllowedOrigin><AllowedOrigin></AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedHeader>*</AllowedHeader><ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>3000</MaxAgeSeconds></CORSRule><CORSRule><AllowedOrigin>x &amp; "y" 'z' &lt;w&gt;&#9;&#xD;&#10;</AllowedOrigin><AllowedMethod>DELETE</AllowedMethod></CORSRule></CORSConfiguration>`,
		allForms[strings.Index(allForms, `"legacy": "`)+len(`"legacy": "`):strings.Index(allForms, `</CORSConfiguration>",`)] + "</CORSConfiguration>",
	}
	for _, doc := range docs {
		doc = strings.NewReplacer(`\"`, `"`, `\n`, "\n").Replace(doc)
		b, err := evaluator.ParseBucketCORS([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		xml1 := b.XML()
		viaJSON, err := evaluator.ParseBucketCORS(b.JSON())
		if err != nil {
			t.Fatalf("JSON does not parse back: %v\n%s", err, b.JSON())
		}
		if xml2 := viaJSON.XML(); string(xml2) != string(xml1) {
			t.Errorf("XML -> JSON -> XML differs:\n%s\n%s", xml1, xml2)
		}
		viaConsole, err := evaluator.ParseBucketCORS(b.ConsoleJSON())
		if err != nil || !reflect.DeepEqual(viaConsole.Rules, b.Rules) {
			t.Errorf("console JSON round trip: %v", err)
		}
		viaXML, err := evaluator.ParseBucketCORS(xml1)
		if err != nil || !reflect.DeepEqual(viaXML.Rules, b.Rules) {
			t.Errorf("XML round trip: %v\n%+v\n%+v", err, viaXML, b.Rules)
		}
	}
}

func TestCompileValidatesConfigBuiltInCode(t *testing.T) {
	cfg := &evaluator.Config{
		Buckets: map[string]*evaluator.BucketCORS{
			"ok":    {Form: evaluator.FormAWSJSON, Rules: []evaluator.Rule{{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"GET"}}}},
			"bad":   {Form: evaluator.FormAWSJSON, Rules: []evaluator.Rule{{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"PATCH"}}}},
			"nil":   nil,
			"empty": {Form: evaluator.FormXML},
		},
		BucketOrder:     []string{"ok", "bad", "nil", "empty"},
		UnlistedBuckets: "sometimes",
		Addressing:      evaluator.Addressing{PathStyle: true},
	}
	_, err := evaluator.Compile(cfg)
	var ve *evaluator.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Compile error %v, want a *ValidationError", err)
	}
	var got []string
	for _, p := range ve.Problems {
		got = append(got, p.Path+" "+p.Code)
	}
	want := []string{
		`buckets["bad"].CORSRules[0].AllowedMethods[0] InvalidRequest`,
		`buckets["nil"] InvalidConfiguration`,
		`buckets["empty"].CORSRules MalformedXML`,
		`unlistedBuckets InvalidConfiguration`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := evaluator.Compile(nil); err == nil {
		t.Error("Compile(nil) succeeded")
	}
	if _, err := evaluator.Compile(&evaluator.Config{}); err == nil || !strings.Contains(err.Error(), "no request could name a bucket") {
		t.Errorf("Compile of the zero Config: %v", err)
	}
	// Zero-value enums take their defaults: unlisted buckets are not-enabled, upstream CORS
	// headers are stripped.
	pol, err := evaluator.Compile(&evaluator.Config{Addressing: evaluator.Addressing{PathStyle: true}})
	if err != nil {
		t.Fatal(err)
	}
	var d evaluator.Decision
	pol.Evaluate(&evaluator.Request{Method: "OPTIONS", Path: "/b/k", Origin: "o", HasOrigin: true}, &d)
	if d.Reason != evaluator.ReasonNotEnabled {
		t.Errorf("zero UnlistedBuckets: reason %v, want not_enabled", d.Reason)
	}
	pol.Evaluate(&evaluator.Request{Method: "GET", Path: "/b/k"}, &d)
	if !d.StripUpstream {
		t.Error("zero UpstreamCORSHeaders does not strip")
	}
}

func TestProblemString(t *testing.T) {
	p := evaluator.Problem{Path: "CORSRules[0].ID", Code: "MalformedXML", Message: "m", Detail: "d"}
	if got := p.String(); got != "CORSRules[0].ID: MalformedXML: m (d)" {
		t.Errorf("String() = %q", got)
	}
	if got := (evaluator.Problem{Code: "C", Message: "m"}).String(); got != "C: m" {
		t.Errorf("String() = %q", got)
	}
}

// TestWrongTypeShowsValue: a value of the wrong type is shown when it is a scalar, so the user
// sees which of many similar fields is wrong; a long string is cut, not pasted whole.
func TestWrongTypeShowsValue(t *testing.T) {
	// 1 + 30×2 bytes: byte 48 falls inside an "é", so the cut must back off to a rune start.
	long := "x" + strings.Repeat("é", 30)
	for _, tc := range []struct{ doc, want string }{
		{`{"buckets": {"b": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"], "MaxAgeSeconds": "600"}]}}`,
			`buckets["b"][0].MaxAgeSeconds: InvalidConfiguration: must be an integer, not the string "600"`},
		{`{"buckets": {"b": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"], "MaxAgeSeconds": false}]}}`,
			`buckets["b"][0].MaxAgeSeconds: InvalidConfiguration: must be an integer, not the boolean false`},
		{`{"buckets": {"b": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"], "ID": -2.5e3}]}}`,
			`buckets["b"][0].ID: InvalidConfiguration: must be a string, not the number -2.5e3`},
		{`{"buckets": {"b": [{"AllowedOrigins": ["*"], "AllowedMethods": [["GET"]]}]}}`,
			`buckets["b"][0].AllowedMethods[0]: InvalidConfiguration: must be a string, not an array`},
		{`{"buckets": {}, "addressing": {"pathStyle": null}}`,
			`addressing.pathStyle: InvalidConfiguration: must be true or false, not null`},
		{`{"buckets": {"b": {"CORSRules": "` + long + `"}}}`,
			`buckets["b"].CORSRules: InvalidConfiguration: must be an array of rule objects, not the string "x` + strings.Repeat("é", 23) + `"...`},
		// A number is shortened as a string is: a pasted 5,000-digit value is not reprinted.
		{`{"buckets": {"b": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"], "ID": ` + strings.Repeat("9", 5000) + `}]}}`,
			`buckets["b"][0].ID: InvalidConfiguration: must be a string, not the number ` + strings.Repeat("9", 48) + `...`},
		{`{"buckets": {"b": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"], "MaxAgeSeconds": ` + strings.Repeat("9", 5000) + `}]}}`,
			`buckets["b"][0].MaxAgeSeconds: MalformedXML: The XML you provided was not well-formed or did not validate against our published schema (MaxAgeSeconds must be an integer from 0 to 2147483647, not ` + strings.Repeat("9", 48) + `...)`},
		{`{"buckets": {"b": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"], "MaxAgeSeconds": 1.` + strings.Repeat("5", 5000) + `}]}}`,
			`buckets["b"][0].MaxAgeSeconds: InvalidConfiguration: must be an integer, not 1.` + strings.Repeat("5", 46) + `...`},
		{`"buckets"`, `InvalidConfiguration: the configuration must be a JSON object, not the string "buckets"`},
	} {
		_, err := evaluator.ParseConfig([]byte(tc.doc))
		var ve *evaluator.ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("%s: error %v, want a *ValidationError", tc.doc, err)
			continue
		}
		if got := ve.Problems[0].String(); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.doc, got, tc.want)
		}
	}
}

// TestParseConfigBareBucketDocument: a bucket CORS document where an s3cors configuration
// belongs is named as such, with how to wrap it, instead of "unknown key" and "not an array".
// The form is named without claiming a syntax: the same document may come from YAML.
// BareDocument, which the CLI uses, says exactly what ParseConfig says.
func TestParseConfigBareBucketDocument(t *testing.T) {
	const wrap = `, not an s3cors configuration: put it under a bucket name, {"buckets": {"NAME": `
	const notArray = `the configuration must be a JSON object, not an array`
	for _, tc := range []struct {
		doc  string
		form evaluator.Form // of a bare document
		want string
	}{
		{"\n<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>",
			evaluator.FormXML, `this is a bucket CORS document (S3 XML)` + wrap + `"<CORSConfiguration>...</CORSConfiguration>"}}`},
		{"\ufeff<CORSConfiguration/>", evaluator.FormXML, `this is a bucket CORS document (S3 XML)` + wrap + `"<CORSConfiguration>...</CORSConfiguration>"}}`},
		// An XML file a loader took for YAML arrives as one string.
		{`"<CORSConfiguration> <CORSRule> </CORSRule> </CORSConfiguration>"`,
			evaluator.FormXML, `this is a bucket CORS document (S3 XML)` + wrap + `"<CORSConfiguration>...</CORSConfiguration>"}}`},
		{`[]`, evaluator.FormConsoleJSON, `this is a bucket CORS document (S3 console form)` + wrap + `[...]}}`},
		{`[{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}, {}]`, evaluator.FormConsoleJSON, `this is a bucket CORS document (S3 console form)` + wrap + `[...]}}`},
		// Misspelt or XML-singular rule members still make a rule.
		{`[{"AllowedOrigin": ["*"], "allowedmethods": ["GET"]}]`, evaluator.FormConsoleJSON, `this is a bucket CORS document (S3 console form)` + wrap + `[...]}}`},
		{`{"CORSRules": []}`, evaluator.FormAWSJSON, `this is a bucket CORS document (AWS form)` + wrap + `{"CORSRules": [...]}}}`},
		// An array of anything but rules is not a console document.
		{`[{"buckets": {}}]`, 0, notArray},
		{`[{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}, {"buckets": {}}]`, 0, notArray},
		{`[1, 2]`, 0, notArray},
		{`[[]]`, 0, notArray},
		// With "buckets" present it is a configuration with a stray key.
		{`{"buckets": {}, "CORSRules": []}`, 0, `unknown key "CORSRules"`},
	} {
		_, err := evaluator.ParseConfig([]byte(tc.doc))
		var ve *evaluator.ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("%s: error %v, want a *ValidationError", tc.doc, err)
			continue
		}
		if len(ve.Problems) != 1 || ve.Problems[0].Message != tc.want {
			t.Errorf("%s:\n got %v\nwant one problem %q", tc.doc, ve.Problems, tc.want)
		}
		form, msg, ok := evaluator.BareDocument([]byte(tc.doc))
		bare := tc.form != 0 || strings.HasPrefix(tc.want, "this is")
		if ok != bare || ok && (form != tc.form || msg != tc.want) || !ok && msg != "" {
			t.Errorf("BareDocument(%s) = %v, %q, %v; want %v, %q, %v", tc.doc, form, msg, ok, tc.form, tc.want, bare)
		}
	}
	for _, doc := range []string{`{"buckets": {}}`, `{"CORSRules": [`, `[{"AllowedOrigins": ["*"],}]`, "", "buckets: {}"} {
		if form, msg, ok := evaluator.BareDocument([]byte(doc)); ok {
			t.Errorf("BareDocument(%q) = %v, %q, true; want false", doc, form, msg)
		}
	}
}

// TestParseConfigEmpty: blank input (nothing, blanks, a byte-order mark) is called an empty
// configuration with what one looks like, not "unexpected end of input"; the surfaces only
// add the file name.
func TestParseConfigEmpty(t *testing.T) {
	const want = `InvalidConfiguration: the configuration is empty: an s3cors configuration is an object with at least "buckets", e.g. {"buckets": {}}`
	for _, doc := range []string{"", " \n\t\r\n", "\ufeff", "\ufeff \n"} {
		_, err := evaluator.ParseConfig([]byte(doc))
		var ve *evaluator.ValidationError
		if !errors.As(err, &ve) || len(ve.Problems) != 1 || ve.Problems[0].String() != want {
			t.Errorf("ParseConfig(%q) = %v, want one problem %q", doc, err, want)
		}
	}
	// A byte-order mark before a document is named, not read as the character 'ï'.
	const bom = `InvalidConfiguration: the configuration starts with a UTF-8 byte-order mark (bytes EF BB BF), which JSON does not allow: remove it`
	for _, doc := range []string{"\ufeff{\"buckets\": {}}", " \ufeff[]", "\ufeff\"x\""} {
		_, err := evaluator.ParseConfig([]byte(doc))
		var ve *evaluator.ValidationError
		if !errors.As(err, &ve) || len(ve.Problems) != 1 || ve.Problems[0].String() != bom {
			t.Errorf("ParseConfig(%q) = %v, want one problem %q", doc, err, bom)
		}
	}
	// A document that says null is not empty.
	_, err := evaluator.ParseConfig([]byte("null"))
	if err == nil || !strings.Contains(err.Error(), "must be a JSON object, not null") {
		t.Errorf("ParseConfig(null) = %v, want a JSON object asked for", err)
	}
}
