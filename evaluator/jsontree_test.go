package evaluator

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// toAny converts a parsed tree to what encoding/json produces for `any` with UseNumber
// (duplicate keys: the last one wins).
func toAny(v *jsonValue) any {
	switch v.kind {
	case jsonNull:
		return nil
	case jsonBool:
		return v.boolean
	case jsonNumber:
		return json.Number(v.str)
	case jsonString:
		return v.str
	case jsonArray:
		out := make([]any, 0, len(v.members))
		for _, m := range v.members {
			out = append(out, toAny(m.val))
		}
		return out
	}
	out := map[string]any{}
	for _, m := range v.members {
		out[m.key] = toAny(m.val)
	}
	return out
}

func depth(data []byte) int {
	d, max := 0, 0
	inString, escaped := false, false
	for _, c := range data {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case !inString && (c == '[' || c == '{'):
			d++
			max = maxInt(max, d)
		case !inString && (c == ']' || c == '}'):
			d--
		}
	}
	return max
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// FuzzJSON checks the configuration's JSON parser against encoding/json: the same documents
// are accepted and they mean the same values.
func FuzzJSON(f *testing.F) {
	for _, s := range []string{
		`{"a": [1, -0.5e+3, true, false, null, "x\u00e9\ud83d\ude00\n\"\\\/"]}`,
		`{"a": 1, "a": {"b": []}}`, `[]`, `{}`, `""`, `-0`, `01`, `1.`, `"\ud800"`, `"\ud800\u0041"`,
		"\"\xff\xfe\"", `{"a" 1}`, `[1,]`, `tru`, " \t\n\r[\n]\n", `"\x"`, "\"\x01\"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if depth(data) > maxJSONDepth-1 {
			return
		}
		ours, err := parseJSON(data)
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var theirs any
		theirErr := dec.Decode(&theirs)
		if theirErr == nil && dec.More() {
			theirErr = json.Unmarshal(data, new(any)) // trailing data
		}
		if valid := json.Valid(data); valid != (err == nil) {
			t.Fatalf("%q: encoding/json valid=%v, ours: %v", data, valid, err)
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "invalid JSON") {
				t.Fatalf("error %q", err)
			}
			return
		}
		if theirErr != nil {
			t.Fatalf("%q: encoding/json: %v", data, theirErr)
		}
		if got := toAny(ours); !reflect.DeepEqual(got, theirs) {
			t.Fatalf("%q:\nours   %#v\ntheirs %#v", data, got, theirs)
		}
	})
}
