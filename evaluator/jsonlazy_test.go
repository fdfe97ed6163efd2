package evaluator

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// sameConfig fails t unless the streaming and the whole-tree readers give ParseConfig the same
// configuration, or the same error, for data.
func sameConfig(t *testing.T, name string, data []byte) {
	t.Helper()
	lazy, lerr := parseConfig(data, true)
	tree, terr := parseConfig(data, false)
	if (lerr == nil) != (terr == nil) || lerr != nil && lerr.Error() != terr.Error() {
		t.Fatalf("%s: lazy reader: %v\nwhole tree: %v", name, lerr, terr)
	}
	if !reflect.DeepEqual(lazy, tree) {
		t.Fatalf("%s: lazy reader: %+v\nwhole tree: %+v", name, lazy, tree)
	}
}

// lazySeeds are documents that reach every path of the lazy reader: each bucket form, bad
// values and syntax errors inside a bucket's value, nesting at the depth bound, and members
// that look like "buckets" but are not the top-level one.
func lazySeeds(tb testing.TB) map[string][]byte {
	seeds := map[string][]byte{
		"forms": []byte(`{"buckets": {"a": {"CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]},
			"b": [{"AllowedOrigins": ["https://x.example"], "AllowedMethods": ["PUT"], "MaxAgeSeconds": 5}],
			"c": "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>",
			"d": null}, "default": [{"AllowedOrigins": ["*"], "AllowedMethods": ["HEAD"]}]}`),
		"bad values":         []byte(`{"buckets": {"a": [{"AllowedOrigins": [1], "AllowedMethods": ["PATCH"], "MaxAgeSeconds": "600"}], "b": 7, "b": [], "": null, "c/d": null}}`),
		"syntax in bucket":   []byte(`{"buckets": {"a": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"],}]}}`),
		"syntax after":       []byte(`{"buckets": {"a": null} x`),
		"end in bucket":      []byte(`{"buckets": {"a": [{"AllowedOrigins": ["*`),
		"escapes":            []byte(`{"buckets": {"a\u00e9": [{"AllowedOrigins": ["https://\u0078.example", "\ud800"], "AllowedMethods": ["G\u0045T"]}]}}`),
		"invalid utf8":       []byte("{\"buckets\": {\"a\": [{\"AllowedOrigins\": [\"\xff\"], \"AllowedMethods\": [\"GET\"]}]}}"),
		"nested buckets":     []byte(`{"buckets": {"buckets": {"buckets": null}}, "default": {"buckets": {}}}`),
		"buckets not object": []byte(`{"buckets": [{"a": null}], "addressing": {"buckets": 1}}`),
		"empty":              []byte(`{"buckets": {}}`),
		"byte-order mark":    []byte("\ufeff{\"buckets\": {\"a\": null}}"),
		// Values read before "buckets" must survive every bucket's rewind.
		"before buckets": []byte(`{"default": [{"AllowedOrigins": ["https://d.example"], "AllowedMethods": ["GET"], "ExposeHeaders": ["ETag"]}],
			"addressing": {"virtualHostSuffixes": ["s3.example.com"], "pathStyle": false},
			"buckets": {"a": [{"AllowedOrigins": ["https://a.example", "https://b.example"], "AllowedMethods": ["PUT", "POST"], "AllowedHeaders": ["*"]}],
			"b": {"CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["DELETE"], "MaxAgeSeconds": 9}]}}, "unlistedBuckets": "forward"}`),
		"two buckets keys": []byte(`{"buckets": {"a": null}, "buckets": {"b": [{}]}}`),
		// b's empty array and object take the slots where a's number and rule were.
		"reused slots": []byte(`{"buckets": {"a": [{"AllowedOrigins": 1}], "b": [[], {}], "c": [true, {"ID": "x"}], "d": [null, {}]}}`),
		"bare":         []byte(`{"CORSRules": []}`),
		"not object":   []byte(`[1, 2]`),
		"deep": []byte(`{"buckets": {"a": ` + strings.Repeat("[", maxJSONDepth-1) + strings.Repeat("]", maxJSONDepth-1) +
			`, "b": ` + strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth) + `}}`),
	}
	var many strings.Builder
	many.WriteString(`{"unlistedBuckets": "not-found", "buckets": {`)
	for i := range 300 {
		if i > 0 {
			many.WriteString(",")
		}
		// Rules of different sizes, so that a reused chunk holds an older, longer tree, and
		// now and then empty objects and arrays, which must not show an older tree's members.
		n := 1 + i%7
		many.WriteString(strconv.Quote("b"+strconv.Itoa(i)) + `: `)
		switch i % 10 {
		case 3:
			many.WriteString(`[{}, [], {"AllowedOrigins": [], "AllowedMethods": [], "ID": true}]`)
			continue
		case 6:
			many.WriteString(`{}`)
			continue
		}
		many.WriteString(`[`)
		for r := range n {
			if r > 0 {
				many.WriteString(",")
			}
			many.WriteString(`{"AllowedOrigins": ["https://o` + strconv.Itoa(i) + `.example"], "AllowedMethods": ["GET", "PUT"], "ExposeHeaders": ["ETag"], "ID": "r` + strconv.Itoa(r) + `"}`)
		}
		many.WriteString(`]`)
	}
	many.WriteString(`}}`)
	seeds["many buckets"] = []byte(many.String())
	for _, dir := range []string{"invalid", "hostile", "demo"} {
		files, _ := filepath.Glob(filepath.Join("..", "testdata", dir, "*.json"))
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				tb.Fatal(err)
			}
			seeds[f] = data
		}
	}
	cases, _ := filepath.Glob(filepath.Join("..", "testdata", "cases", "*.json"))
	for _, f := range cases {
		data, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		var table struct {
			Config json.RawMessage `json:"config"`
		}
		if json.Unmarshal(data, &table) == nil && len(table.Config) > 0 {
			seeds[f] = table.Config
		}
	}
	if len(seeds) < 40 {
		tb.Fatalf("only %d seeds: the testdata files were not found", len(seeds))
	}
	return seeds
}

func TestLazyConfigMatchesTree(t *testing.T) {
	for name, data := range lazySeeds(t) {
		sameConfig(t, name, data)
	}
}

// TestLazyConfigBuildsNoTree: the streaming reader hands every bucket over while it reads,
// keeps none of their trees, and needs the memory of one bucket's tree, not of all of them.
func TestLazyConfigBuildsNoTree(t *testing.T) {
	data := lazySeeds(t)["many buckets"]
	var names []string
	p := &jsonParser{data: data}
	p.onBucket = func(key string, v *jsonValue) {
		if v.kind != jsonArray && v.kind != jsonObject {
			t.Fatalf("bucket %q handed over as %v", key, v.kind)
		}
		names = append(names, key)
	}
	root, err := p.document()
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 300 || names[0] != "b0" || names[299] != "b299" {
		t.Fatalf("handed over %d buckets (%v...), want b0 to b299 in order", len(names), names[:min(3, len(names))])
	}
	for _, m := range root.members {
		if m.key != "buckets" {
			continue
		}
		for _, b := range m.val.members {
			if b.val != &streamedValue {
				t.Fatalf("bucket %q kept as %v, want the streamed stand-in", b.key, b.val.kind)
			}
		}
	}
	// The largest bucket has 7 rules of 11 values: a few chunks of 256 hold any of them.
	if len(p.valChunks) > 4 {
		t.Errorf("%d value chunks after 300 buckets, want the few one bucket needs", len(p.valChunks))
	}
}

func FuzzLazyConfig(f *testing.F) {
	for _, data := range lazySeeds(f) {
		if len(data) < 16<<10 {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sameConfig(t, "input", data)
	})
}
