package wasmhost

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// TestPairsEncoding checks the encoding against the spec's worked example (§1.6):
// {a:1, b:22} = 02000000 01000000 01000000 01000000 02000000 61 00 31 00 62 00 32 32 00.
func TestPairsEncoding(t *testing.T) {
	h := Headers{{"a", "1"}, {"b", "22"}}
	want, _ := hex.DecodeString("02000000" + "01000000" + "01000000" + "01000000" + "02000000" + "6100" + "3100" + "6200" + "323200")
	got := make([]byte, pairsSize(h))
	marshalPairs(h, got)
	if !bytes.Equal(got, want) {
		t.Errorf("marshal = %x, want %x", got, want)
	}
	if back := parsePairs(want); !equalHeaders(back, h) {
		t.Errorf("parse = %v, want %v", back, h)
	}
}

// TestParsePairsStrict: anything but an exactly consumed, NUL-terminated buffer of at most
// 1 MiB and 1024 pairs parses as an empty list.
func TestParsePairsStrict(t *testing.T) {
	good := make([]byte, pairsSize(Headers{{"k", "v"}}))
	marshalPairs(Headers{{"k", "v"}}, good)
	tooMany := make([]byte, 4)
	tooMany[0], tooMany[1] = 0x01, 0x04 // 1025 pairs
	bigValue := Headers{{"k", string(bytes.Repeat([]byte("x"), 1<<20))}}
	big := make([]byte, pairsSize(bigValue))
	marshalPairs(bigValue, big)
	for name, b := range map[string][]byte{
		"empty":         nil,
		"one zero byte": {0},
		"trailing byte": append(append([]byte(nil), good...), 0),
		"short":         good[:len(good)-1],
		"no NUL":        append(append([]byte(nil), good[:len(good)-1]...), 'x'),
		"count too big": {2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 'k', 0, 'v', 0},
		"1025 pairs":    tooMany,
		"over 1 MiB":    big,
	} {
		if got := parsePairs(b); len(got) != 0 {
			t.Errorf("%s: parsed %v, want nothing", name, got)
		}
	}
	if got := parsePairs([]byte{0, 0, 0, 0}); got == nil || len(got) != 0 {
		t.Errorf("zero count: %v, want an empty list", got)
	}
}

// TestHeaderMapOps: lower-case keys, pseudo-headers kept first, setCopy replaces every value
// (remove then add), byte size is keys plus values.
func TestHeaderMapOps(t *testing.T) {
	m := newHeaderMap(Headers{{"X-A", "1"}, {":path", "/"}, {"x-a", "2"}, {":method", "GET"}}, inlineRequest)
	if want := (Headers{{":path", "/"}, {":method", "GET"}, {"x-a", "1"}, {"x-a", "2"}}); !equalHeaders(m.h, want) {
		t.Fatalf("map = %v, want %v", m.h, want)
	}
	if v, ok := m.get("X-A"); !ok || v != "1" {
		t.Errorf("get = %q %v, want the first value", v, ok)
	}
	m.add(":authority", "h")
	m.set("x-a", "3")
	if want := (Headers{{":path", "/"}, {":method", "GET"}, {":authority", "h"}, {"x-a", "3"}}); !equalHeaders(m.h, want) {
		t.Errorf("after add/set = %v, want %v", m.h, want)
	}
	if m.byteSize() != uint32(len(":path/:methodGET:authorityhx-a3")) {
		t.Errorf("byteSize = %d", m.byteSize())
	}
	m.remove("X-A")
	m.remove("absent")
	if len(m.h) != 3 {
		t.Errorf("after remove = %v", m.h)
	}
}

// FuzzParsePairs: guest-sent pairs never panic the host; what parses re-encodes to the same
// bytes, and what the host encodes parses back.
func FuzzParsePairs(f *testing.F) {
	for _, h := range []Headers{nil, {{"a", "1"}}, {{":status", "200"}, {"content-type", "text/plain"}}, {{"", ""}}} {
		b := make([]byte, pairsSize(h))
		marshalPairs(h, b)
		f.Add(b)
	}
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h := parsePairs(b)
		if len(h) > 0 {
			out := make([]byte, pairsSize(h))
			marshalPairs(h, out)
			if !bytes.Equal(out, b) {
				t.Fatalf("parse(%x) = %v re-encodes to %x", b, h, out)
			}
		}
		// Any header list the host sends round-trips.
		var in Headers
		for i := 0; i+1 < len(b) && i < 64; i += 2 {
			in = append(in, [2]string{string(b[i : i+1]), string(b[i+1 : i+2])})
		}
		enc := make([]byte, pairsSize(in))
		marshalPairs(in, enc)
		if back := parsePairs(enc); len(in) > 0 && !equalHeaders(back, in) {
			t.Fatalf("round trip of %v = %v", in, back)
		}
	})
}

// FuzzParseModule: the load-time parser (also behind Check) never panics, and every export it
// reports as a function has a signature.
func FuzzParseModule(f *testing.F) {
	// A minimal module: type ()->(), one function, exported as "proxy_abi_version_0_2_1".
	minimal, _ := hex.DecodeString("0061736d01000000" + "010401600000" + "03020100" +
		"071b0117" + hex.EncodeToString([]byte("proxy_abi_version_0_2_1")) + "0000" + "0a040102000b")
	f.Add(minimal)
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x02\x05\x01\x01a\x01b\x03"))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := parseModule(b)
		if err != nil {
			return
		}
		for _, e := range info.exports {
			if e.kind == externFunc && e.sig.params == nil && e.sig.results == nil && len(b) < 8 {
				t.Fatalf("export %q without a module", e.name)
			}
		}
		_ = linkMessage(info, abi021, profiles[Envoy133])
		_, _, _ = exportMessages(info, abi021, profiles[Envoy139])
	})
}

// TestHeaderMapInline: a repeated O(1) header is folded into its first line with a comma, as
// Envoy's codecs and addCopy do (seen in Envoy 1.36.2 and 1.40.0: two Origin lines reach a
// filter as "a,b", two Vary lines from the store reach the client as one); other headers keep
// their repeats; an empty value adds nothing and an empty line takes the value as it is.
func TestHeaderMapInline(t *testing.T) {
	m := RequestHeaderMap(Headers{{"Origin", "https://a"}, {"x-amz-meta-a", "1"}, {"origin", "https://b"},
		{"x-amz-meta-a", "2"}, {"user-agent", ""}, {"User-Agent", "ua"}, {"accept", "x"}, {"accept", ""}})
	want := Headers{{"origin", "https://a,https://b"}, {"x-amz-meta-a", "1"}, {"x-amz-meta-a", "2"}, {"user-agent", "ua"}, {"accept", "x"}}
	if !equalHeaders(m, want) {
		t.Errorf("request map = %v, want %v", m, want)
	}
	if got := ResponseHeaderMap(Headers{{"Vary", "a"}, {"vary", "b"}, {"origin", "a"}, {"origin", "b"}}); !equalHeaders(got, Headers{{"vary", "a,b"}, {"origin", "a"}, {"origin", "b"}}) {
		t.Errorf("ResponseHeaderMap = %v", got)
	}
	r := newHeaderMap(Headers{{":status", "200"}, {"vary", "Accept-Encoding"}, {"Vary", "Origin"}, {"origin", "a"}, {"origin", "b"}}, inlineResponse)
	r.add("access-control-allow-origin", "*")
	r.add("access-control-allow-origin", "https://a")
	want = Headers{{":status", "200"}, {"vary", "Accept-Encoding,Origin"}, {"origin", "a"}, {"origin", "b"}, {"access-control-allow-origin", "*,https://a"}}
	if !equalHeaders(r.h, want) {
		t.Errorf("response map = %v, want %v", r.h, want)
	}
}
