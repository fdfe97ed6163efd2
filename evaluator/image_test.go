package evaluator_test

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/testing/casetable"
)

var updateImages = flag.Bool("update-images", false, "rewrite the golden images under testdata/image")

// imageOf compiles a configuration document to an image and loads it, failing the test on
// any error.
func imageOf(t testing.TB, doc []byte) ([]byte, *evaluator.Policy) {
	t.Helper()
	cfg, err := evaluator.ParseConfig(doc)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	img, err := evaluator.CompileImage(cfg)
	if err != nil {
		t.Fatalf("CompileImage: %v", err)
	}
	pol, err := evaluator.LoadImage(bytes.Clone(img))
	if err != nil {
		t.Fatalf("LoadImage: %v", err)
	}
	return img, pol
}

// sameDecision compares two decisions of the same request field by field, the reply's
// random ids aside (each is replaced by a placeholder before comparing).
func sameDecision(a, b *evaluator.Decision) error {
	norm := func(d *evaluator.Decision, s string) string {
		if id := d.RequestID(); id != "" {
			s = strings.ReplaceAll(s, id, "<request-id>")
		}
		if id := d.HostID(); id != "" {
			s = strings.ReplaceAll(s, id, "<host-id>")
		}
		return s
	}
	show := func(d *evaluator.Decision) string {
		return norm(d, fmt.Sprintf("%v %v %v %q %q rule=%d set=%d status=%d strip=%v sets=%v headers=%q body=%q allow=%q",
			d.Outcome, d.Reason, d.Ambiguity, d.Bucket, d.Key, d.Rule, d.HeaderSet, d.Status, d.StripUpstream, d.SetsHeaders(), d.Headers, d.Body, d.AllowHeaders()))
	}
	if x, y := show(a), show(b); x != y {
		return fmt.Errorf("decisions differ:\n  json:  %s\n  image: %s", x, y)
	}
	return nil
}

// TestImageCaseTables runs every shared case through the image-loaded policy (raw and
// wrapped in JSON) and holds each decision to the JSON-loaded policy's, field by field.
func TestImageCaseTables(t *testing.T) {
	tables, err := casetable.LoadDir(filepath.Join("..", "testdata", "cases"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		t.Run(filepath.Base(tb.File), func(t *testing.T) {
			js, err := evaluator.Load(tb.Config)
			if err != nil {
				t.Fatalf("config: %v", err)
			}
			img, raw := imageOf(t, tb.Config)
			wrapped, err := evaluator.LoadAny(evaluator.WrapImage(img))
			if err != nil {
				t.Fatalf("LoadAny(wrapped): %v", err)
			}
			if js.FixedHeaderSets() != raw.FixedHeaderSets() {
				t.Fatalf("%d fixed header sets from the image, %d from JSON", raw.FixedHeaderSets(), js.FixedHeaderSets())
			}
			for n := 0; n < js.FixedHeaderSets(); n++ {
				if !slices.Equal(js.FixedHeaders(n), raw.FixedHeaders(n)) {
					t.Errorf("fixed header set %d: image %q, JSON %q", n, raw.FixedHeaders(n), js.FixedHeaders(n))
				}
			}
			var dj, di, dw evaluator.Decision
			for _, c := range tb.Cases {
				if err := c.Check(Simulate(raw, &di, c)); err != nil {
					t.Error(err)
				}
				js.Evaluate(RequestOf(c.Request), &dj)
				raw.Evaluate(RequestOf(c.Request), &di)
				wrapped.Evaluate(RequestOf(c.Request), &dw)
				if err := sameDecision(&dj, &di); err != nil {
					t.Errorf("%s: %v", c.Name, err)
				}
				if err := sameDecision(&dj, &dw); err != nil {
					t.Errorf("%s (wrapped): %v", c.Name, err)
				}
				if ej, ei := js.Explain(RequestOf(c.Request)), raw.Explain(RequestOf(c.Request)); ej.Source != ei.Source || fmt.Sprint(ej.Rules) != fmt.Sprint(ei.Rules) {
					t.Errorf("%s: explanations differ: %s %+v, image %s %+v", c.Name, ej.Source, ej.Rules, ei.Source, ei.Rules)
				}
			}
		})
	}
}

// manyBuckets is a configuration of n buckets: every third shares one rule list, the others
// have rules of their own; bucket "none" has no CORS, and a default applies to the rest.
func manyBuckets(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"buckets": {"none": null`)
	for i := 0; i < n; i++ {
		origin := fmt.Sprintf("https://a%d.example", i)
		if i%3 == 0 {
			origin = "https://shared.example"
		}
		fmt.Fprintf(&b, `, "b%d": {"CORSRules": [{"AllowedOrigins": [%q, "https://*.app.example"], "AllowedMethods": ["PUT", "GET"], "AllowedHeaders": ["x-amz-*", "Content-Type"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": %d}, {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]}`, i, origin, i%7)
	}
	b.WriteString(`}, "default": {"CORSRules": [{"AllowedOrigins": ["https://d.example"], "AllowedMethods": ["GET"]}]}, "addressing": {"virtualHostSuffixes": ["S3.Example.com", "example.com"]}}`)
	return []byte(b.String())
}

// TestImageManyBuckets holds the image to the JSON policy over more distinct rule sets than
// the image policy keeps compiled, so that sets are compiled, evicted and compiled again.
func TestImageManyBuckets(t *testing.T) {
	const n = 6000
	doc := manyBuckets(n)
	js, err := evaluator.Load(doc)
	if err != nil {
		t.Fatal(err)
	}
	img, pol := imageOf(t, doc)
	if len(img) >= len(doc)/2 {
		t.Errorf("image of %d bytes for %d bytes of JSON", len(img), len(doc))
	}
	var dj, di evaluator.Decision
	for round := 0; round < 2; round++ {
		for i := -2; i < n; i += 1 + round {
			bucket := fmt.Sprintf("b%d", i)
			switch i {
			case -2:
				bucket = "none"
			case -1:
				bucket = "unlisted"
			}
			for _, r := range []*evaluator.Request{
				{Method: "OPTIONS", Authority: "s3.local", Path: "/" + bucket + "/k", Origin: fmt.Sprintf("https://a%d.example", i), HasOrigin: true, RequestMethod: "PUT", HasRequestMethod: true, RequestHeaders: "x-amz-date, content-type", HasRequestHeaders: true},
				{Method: "GET", Authority: bucket + ".s3.example.com", Path: "/k", Origin: "https://x.app.example", HasOrigin: true},
				{Method: "OPTIONS", Authority: bucket + ".example.com", Path: "/k", Origin: "https://shared.example", HasOrigin: true, RequestMethod: "DELETE", HasRequestMethod: true},
			} {
				js.Evaluate(r, &dj)
				pol.Evaluate(r, &di)
				if err := sameDecision(&dj, &di); err != nil {
					t.Fatalf("%s %s%s: %v", r.Method, r.Authority, r.Path, err)
				}
			}
		}
	}
}

// TestImageDeterministic: equal configurations give byte-identical images, whatever the
// form their buckets are written in, and an image re-encodes to itself.
func TestImageDeterministic(t *testing.T) {
	a, pol := imageOf(t, manyBuckets(50))
	b, _ := imageOf(t, manyBuckets(50))
	if !bytes.Equal(a, b) {
		t.Fatal("two images of one configuration differ")
	}
	again, err := pol.Image()
	if err != nil || !bytes.Equal(again, a) {
		t.Fatalf("Image of an image policy: %v, equal %v", err, bytes.Equal(again, a))
	}
	xml, _ := imageOf(t, []byte(`{"buckets": {"s": "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>"}}`))
	console, _ := imageOf(t, []byte(`{"buckets": {"s": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]}}`))
	if !bytes.Equal(xml, console) {
		t.Fatal("the XML and console forms of one bucket give different images")
	}
}

// TestImageSharesRuleSets: buckets with equal rules cost one rule set, so 3,000 buckets
// sharing one policy take little more than their names and table.
func TestImageSharesRuleSets(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"buckets": {`)
	for i := 0; i < 3000; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, `"bucket-%d": {"CORSRules": [{"AllowedOrigins": ["https://app.example"], "AllowedMethods": ["GET", "PUT"], "AllowedHeaders": ["*"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 600}]}`, i)
	}
	b.WriteString(`}}`)
	img, _ := imageOf(t, []byte(b.String()))
	// Per bucket: a 12-byte entry, its name (about 11 bytes) and at most 11 bytes of table (8,192 slots).
	if max := 3000*(12+11+11) + 1024; len(img) > max {
		t.Fatalf("image of %d bytes, want at most %d: shared rules are not stored once", len(img), max)
	}
}

// goldenConfig is the configuration of the golden images: every feature an image encodes.
var goldenConfig = []byte(`{
  "buckets": {
    "site": {"CORSRules": [
      {"ID": "upload", "AllowedOrigins": ["https://app.example.com", "https://*.example.org"], "AllowedMethods": ["GET", "PUT"], "AllowedHeaders": ["x-amz-*", "Content-Type"], "ExposeHeaders": ["ETag", "x-amz-version-id"], "MaxAgeSeconds": 3000},
      {"AllowedOrigins": ["*"], "AllowedMethods": ["HEAD", "DELETE", "POST"], "AllowedHeaders": ["*"]}]},
    "console": [{"AllowedOrigins": ["http://localhost:3000"], "AllowedMethods": ["GET"]}],
    "xml": "<CORSConfiguration><CORSRule><AllowedOrigin>https://app.example.com</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>",
    "same": [{"AllowedOrigins": ["http://localhost:3000"], "AllowedMethods": ["GET"]}],
    "plain": null
  },
  "default": {"CORSRules": [{"AllowedOrigins": ["https://default.example"], "AllowedMethods": ["GET"]}]},
  "addressing": {"virtualHostSuffixes": ["s3.example.com"], "pathStyle": true},
  "upstreamCORSHeaders": "keep",
  "vary": "always"
}`)

// goldenRequests exercise the golden configuration's buckets and options.
var goldenRequests = []evaluator.Request{
	{Method: "OPTIONS", Authority: "s3.local", Path: "/site/k", Origin: "https://app.example.com", HasOrigin: true, RequestMethod: "PUT", HasRequestMethod: true, RequestHeaders: "X-Amz-Date, content-type", HasRequestHeaders: true},
	{Method: "OPTIONS", Authority: "site.s3.example.com", Path: "/k", Origin: "https://a.example.org", HasOrigin: true, RequestMethod: "DELETE", HasRequestMethod: true},
	{Method: "OPTIONS", Authority: "s3.local", Path: "/site/k", Origin: "https://evil.example", HasOrigin: true, RequestMethod: "PATCH", HasRequestMethod: true},
	{Method: "GET", Authority: "s3.local", Path: "/console/k", Origin: "http://localhost:3000", HasOrigin: true},
	{Method: "GET", Authority: "s3.local", Path: "/same/k", Origin: "http://elsewhere", HasOrigin: true},
	{Method: "OPTIONS", Authority: "xml.s3.example.com", Path: "/", Origin: "https://app.example.com", HasOrigin: true, RequestMethod: "GET", HasRequestMethod: true},
	{Method: "OPTIONS", Authority: "s3.local", Path: "/plain/k", Origin: "https://app.example.com", HasOrigin: true, RequestMethod: "GET", HasRequestMethod: true},
	{Method: "GET", Authority: "s3.local", Path: "/other/k", Origin: "https://default.example", HasOrigin: true},
	{Method: "GET", Authority: "s3.local", Path: "/", Origin: "https://default.example", HasOrigin: true},
}

// TestGoldenImages holds compatibility across versions: this version's golden image is what
// CompileImage writes today (a change to the encoding must bump ImageVersion and keep the
// old golden), it loads with the JSON policy's decisions, and an image claiming another
// format version is refused by its version.
func TestGoldenImages(t *testing.T) {
	dir := filepath.Join("testdata", "image")
	current := filepath.Join(dir, fmt.Sprintf("v%d.img", evaluator.ImageVersion))
	img, _ := imageOf(t, goldenConfig)
	if *updateImages {
		other := bytes.Clone(img)
		binary.LittleEndian.PutUint32(other[8:], 99)
		binary.LittleEndian.PutUint32(other[len(other)-4:], crc32.Checksum(other[:len(other)-4], crc32.MakeTable(crc32.Castagnoli)))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range map[string][]byte{current: img, filepath.Join(dir, "v99.img"): other} {
			if err := os.WriteFile(name, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	golden, err := os.ReadFile(current)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(golden, img) {
		t.Errorf("CompileImage no longer writes %s: bump evaluator.ImageVersion, keep the old golden, and run with -update-images", current)
	}
	js, err := evaluator.Load(goldenConfig)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := evaluator.LoadImage(golden)
	if err != nil {
		t.Fatalf("%s: %v", current, err)
	}
	var dj, di evaluator.Decision
	for i := range goldenRequests {
		js.Evaluate(&goldenRequests[i], &dj)
		pol.Evaluate(&goldenRequests[i], &di)
		if err := sameDecision(&dj, &di); err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
	other, err := os.ReadFile(filepath.Join(dir, "v99.img"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := evaluator.LoadImage(other); err == nil || !strings.Contains(err.Error(), "format version 99") {
		t.Errorf("v99.img: %v, want a refusal naming format version 99", err)
	}
}

// reseal rewrites an image's checksum after a deliberate change, so that the loader's later
// checks are reached.
func reseal(img []byte) []byte {
	binary.LittleEndian.PutUint32(img[len(img)-4:], crc32.Checksum(img[:len(img)-4], crc32.MakeTable(crc32.Castagnoli)))
	return img
}

// TestImageBadInput: each malformed image is refused with an error that names what is wrong.
func TestImageBadInput(t *testing.T) {
	img, _ := imageOf(t, goldenConfig)
	set := func(at int, v uint32) []byte {
		b := bytes.Clone(img)
		binary.LittleEndian.PutUint32(b[at:], v)
		return b
	}
	huge := make([]byte, 200<<20)
	copy(huge, img[:16])
	cases := []struct {
		name  string
		image []byte
		want  string
	}{
		{"empty", nil, "not a policy image"},
		{"truncated header", img[:40], "truncated: 40 bytes"},
		{"truncated", img[:len(img)-9], "truncated"},
		{"trailing bytes", append(bytes.Clone(img), 0), "bytes were added after it"},
		{"bit flipped", func() []byte { b := bytes.Clone(img); b[len(b)/2] ^= 0x10; return b }(), "checksum mismatch"},
		{"checksum flipped", func() []byte { b := bytes.Clone(img); b[len(b)-1] ^= 1; return b }(), "checksum mismatch"},
		{"version", set(8, 2), "format version 2; this s3cors reads version 1"},
		{"200 MB", huge, "over the 67108864-byte limit"},
		{"JSON", goldenConfig, "looks like a configuration document"},
		{"YAML", []byte("buckets:\n  site: null\n"), "not a policy image"},
		{"flags", reseal(set(16, 1<<20)), "unknown flags"},
		{"slots", reseal(set(24, 3)), "power of two"},
		{"bucket table", reseal(set(48, uint32(len(img)))), "bucket table at offset"},
		{"rule set offsets", reseal(set(56, 10)), "rule set offsets at offset 10"},
		{"bucket name", reseal(set(int(binary.LittleEndian.Uint32(img[48:]))+4, 1<<30)), "the name of bucket 0 at offset"},
		{"bucket rule set", reseal(set(int(binary.LittleEndian.Uint32(img[48:]))+8, 77)), "rule set 77 is not one of"},
		{"default set", reseal(set(36, 99)), "the default's rule set 99"},
		{"longest probe", reseal(set(28, 0)), "is not in the hash table within 1 probes"},
	}
	for _, c := range cases {
		_, err := evaluator.LoadImage(c.image)
		if err == nil || !strings.HasPrefix(err.Error(), "evaluator: image: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
	// And the reverse: an image given where a configuration document is expected.
	if _, err := evaluator.Load(img); err == nil || !strings.Contains(err.Error(), "compiled policy image") {
		t.Errorf("Load(image): %v", err)
	}
	// Wrappers: well-formed ones only, and a huge one refused before it is decoded.
	for doc, want := range map[string]string{
		`{"s3corsImage": 3}`:                                     "its value is not a string",
		`{"s3corsImage": "AAAA", "vary": "s3"}`:                  `something other than "}"`,
		`{"s3corsImage": "!!!!"}`:                                "not standard base64",
		`{"s3corsImage": "AAAA"} x`:                              "bytes follow",
		`{"s3corsImage": "` + strings.Repeat("A", 90<<20) + `"}`: "over the 67108864-byte limit",
	} {
		if _, err := evaluator.LoadAny([]byte(doc)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadAny(%.40s): %v, want %q", doc, err, want)
		}
	}
	if _, err := evaluator.LoadAny([]byte(`{"vary": "s3", "s3corsImage": "AAAA"}`)); err == nil || !strings.Contains(err.Error(), "s3corsImage") {
		t.Errorf("a configuration with an image member: %v", err)
	}
	// An escaped "/" in the base64, as some JSON writers write it, is still the image.
	wrapped := strings.ReplaceAll(string(evaluator.WrapImage(img)), "/", `\/`)
	if _, err := evaluator.LoadAny([]byte(wrapped)); err != nil {
		t.Errorf("wrapper with escaped slashes: %v", err)
	}
}

// An image whose rules would not pass validation is refused as the configuration would be.
func TestImageInvalidRules(t *testing.T) {
	img, _ := imageOf(t, []byte(`{"buckets": {"s": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]}}`))
	i := bytes.Index(img, []byte("GET"))
	b := bytes.Clone(img)
	copy(b[i:], "GOT")
	_, err := evaluator.LoadImage(reseal(b))
	if err == nil || !strings.Contains(err.Error(), "its configuration is invalid") || !strings.Contains(err.Error(), "GOT") {
		t.Fatalf("%v", err)
	}
}

func FuzzLoadImage(f *testing.F) {
	tables, err := casetable.LoadDir(filepath.Join("..", "testdata", "cases"))
	if err != nil {
		f.Fatal(err)
	}
	for _, tb := range tables {
		img, _ := imageOf(f, tb.Config)
		f.Add(img, false)
		f.Add(img, true)
	}
	img, _ := imageOf(f, goldenConfig)
	f.Add(img[:len(img)-3], true)
	f.Fuzz(func(t *testing.T, data []byte, seal bool) {
		// Resealing lets the fuzzer past the checksum, to the structural checks.
		if seal && len(data) >= 8 {
			data = reseal(bytes.Clone(data))
		}
		pol, err := evaluator.LoadImage(bytes.Clone(data))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "evaluator: image: ") {
				t.Fatalf("error without its prefix: %v", err)
			}
			return
		}
		// An accepted image re-encodes to itself and serves requests to each bucket it
		// could name without panicking.
		again, err := pol.Image()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("Image: %v", err)
		}
		for n := 0; n < pol.FixedHeaderSets(); n++ {
			_ = pol.FixedHeaders(n)
		}
		var d evaluator.Decision
		for _, r := range goldenRequests {
			pol.Evaluate(&r, &d)
			_ = pol.Explain(&r)
		}
	})
}

// FuzzImageDifferential: a configuration and a request; whenever the configuration is
// accepted, its JSON-loaded and image-loaded policies decide the request alike.
func FuzzImageDifferential(f *testing.F) {
	tables, err := casetable.LoadDir(filepath.Join("..", "testdata", "cases"))
	if err != nil {
		f.Fatal(err)
	}
	for _, tb := range tables {
		for _, c := range tb.Cases {
			o, _ := c.Request.Get("Origin")
			m, _ := c.Request.Get("Access-Control-Request-Method")
			h, _ := c.Request.Get("Access-Control-Request-Headers")
			f.Add(string(tb.Config), c.Request.Method, c.Request.Authority, c.Request.Path, o, m, h)
		}
	}
	f.Add(string(goldenConfig), "OPTIONS", "site.s3.example.com", "/k", "https://x.example.org", "PUT", "x-amz-meta-a, Content-Type")
	f.Fuzz(func(t *testing.T, doc, method, authority, path, origin, acrm, acrh string) {
		js, err := evaluator.Load([]byte(doc))
		if err != nil {
			return
		}
		_, pol := imageOf(t, []byte(doc))
		var dj, di evaluator.Decision
		for _, r := range []evaluator.Request{
			{Method: method, Authority: authority, Path: path, Origin: origin, HasOrigin: origin != "", RequestMethod: acrm, HasRequestMethod: acrm != "", RequestHeaders: acrh, HasRequestHeaders: acrh != ""},
			{Method: "OPTIONS", Authority: authority, Path: path, Origin: origin, HasOrigin: true, RequestMethod: acrm, HasRequestMethod: true, RequestHeaders: acrh, HasRequestHeaders: true},
			{Method: "GET", Authority: authority, Path: path, Origin: origin, HasOrigin: true},
		} {
			js.Evaluate(&r, &dj)
			pol.Evaluate(&r, &di)
			if err := sameDecision(&dj, &di); err != nil {
				t.Fatalf("%+v: %v", r, err)
			}
		}
	})
}
