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

// treeJSON is the whole-tree reader, the reference parseConfigJSON is held to.
func treeJSON(data []byte) (*jsonValue, *jsonParser, error) {
	v, err := parseJSON(data)
	return v, nil, err
}

// sameConfig fails t unless the lazy and the whole-tree readers give ParseConfig the same
// configuration, or the same error, for data.
func sameConfig(t *testing.T, name string, data []byte) {
	t.Helper()
	lazy, lerr := parseConfig(data, parseConfigJSON)
	tree, terr := parseConfig(data, treeJSON)
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

// TestLazyConfigBuildsNoTree: the lazy reader's memory for buckets' trees is what one
// bucket needs, not what all of them need.
func TestLazyConfigBuildsNoTree(t *testing.T) {
	data := lazySeeds(t)["many buckets"]
	root, sub, err := parseConfigJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	var buckets *jsonValue
	for _, m := range root.members {
		if m.key == "buckets" {
			buckets = m.val
		}
	}
	if buckets == nil || len(buckets.members) != 300 {
		t.Fatalf("buckets %+v", buckets)
	}
	for _, m := range buckets.members {
		if m.val.kind != jsonRaw {
			t.Fatalf("bucket %q read as %v, want it left unbuilt", m.key, m.val.kind)
		}
		if _, err := sub.reparse(m.val); err != nil {
			t.Fatalf("bucket %q: %v", m.key, err)
		}
		sub.release()
	}
	// The largest bucket has 7 rules of 11 values: one 256-value chunk holds any of them.
	if len(sub.valChunks) > 3 {
		t.Errorf("%d value chunks after 300 buckets, want the few one bucket needs", len(sub.valChunks))
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
