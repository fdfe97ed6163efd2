package abi

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// The example of spec proxy-wasm-envoy.md §1.6: {a:1, b:22}.
const specPairs = "02000000" + "01000000" + "01000000" + "01000000" + "02000000" + "6100" + "3100" + "6200" + "323200"

func TestEncodePairsMatchesSpecExample(t *testing.T) {
	got, err := EncodePairs(nil, []Header{{"a", "1"}, {"b", "22"}})
	if err != nil {
		t.Fatal(err)
	}
	if h := hex.EncodeToString(got); h != specPairs {
		t.Errorf("EncodePairs = %s, want %s", h, specPairs)
	}
}

func TestDecodePairsMatchesSpecExample(t *testing.T) {
	b, _ := hex.DecodeString(specPairs)
	got, err := DecodePairs(nil, b)
	if err != nil {
		t.Fatal(err)
	}
	want := []Header{{"a", "1"}, {"b", "22"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DecodePairs = %q, want %q", got, want)
	}
}

func TestPairsRoundTrip(t *testing.T) {
	for _, hs := range [][]Header{
		{},
		{{"", ""}},
		{{":status", "200"}, {"vary", ""}, {"x", strings.Repeat("v", 70000)}},
		{{"access-control-allow-origin", "*"}, {"access-control-allow-origin", "https://a.example"}},
	} {
		b, err := EncodePairs(nil, hs)
		if err != nil {
			t.Fatalf("EncodePairs(%q): %v", hs, err)
		}
		got, err := DecodePairs(nil, b)
		if err != nil {
			t.Fatalf("DecodePairs(EncodePairs(%q)): %v", hs, err)
		}
		if len(got) != len(hs) || (len(hs) > 0 && !reflect.DeepEqual(got, hs)) {
			t.Errorf("round trip of %q gave %q", hs, got)
		}
	}
}

// The host returns an empty map as ptr=0,size=0: no bytes at all.
func TestDecodePairsAcceptsEmptyBuffer(t *testing.T) {
	got, err := DecodePairs(nil, nil)
	if err != nil || len(got) != 0 {
		t.Fatalf("DecodePairs(nil) = %q, %v; want empty, nil", got, err)
	}
}

func TestDecodePairsRejectsMalformed(t *testing.T) {
	good, _ := hex.DecodeString(specPairs)
	cases := map[string][]byte{
		"short count":      {1, 0},
		"count too big":    {0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0},
		"truncated":        good[:len(good)-1],
		"trailing garbage": append(bytes.Clone(good), 0),
		"missing NUL":      bytes.Replace(bytes.Clone(good), []byte{'a', 0}, []byte{'a', 'a'}, 1),
		"length overflow":  append([]byte{1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, 0, 0),
	}
	for name, b := range cases {
		prefix := []Header{{"keep", "me"}}
		got, err := DecodePairs(prefix, b)
		if !errors.Is(err, ErrPairs) {
			t.Errorf("%s: err = %v, want ErrPairs", name, err)
		}
		if len(got) != 1 || got[0] != prefix[0] {
			t.Errorf("%s: dst = %q, want it unchanged", name, got)
		}
	}
}

func TestEncodePairsRefusesWhatEnvoyWouldDrop(t *testing.T) {
	if _, err := EncodePairs(nil, make([]Header, MaxPairsCount+1)); !errors.Is(err, ErrPairs) {
		t.Errorf("%d pairs: err = %v, want ErrPairs", MaxPairsCount+1, err)
	}
	if _, err := EncodePairs(nil, []Header{{"x", strings.Repeat("v", MaxPairsBytes)}}); !errors.Is(err, ErrPairs) {
		t.Errorf("over %d bytes: err = %v, want ErrPairs", MaxPairsBytes, err)
	}
}

func FuzzDecodePairs(f *testing.F) {
	good, _ := hex.DecodeString(specPairs)
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		hs, err := DecodePairs(nil, b)
		if err != nil {
			if len(hs) != 0 {
				t.Fatalf("error %v with %d headers decoded", err, len(hs))
			}
			return
		}
		// Whatever decodes re-encodes to the same bytes (an empty buffer to a zero count).
		again, err := EncodePairs(nil, hs)
		if err != nil {
			t.Fatalf("re-encoding %q: %v", hs, err)
		}
		if len(b) == 0 {
			b = []byte{0, 0, 0, 0}
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoded %x, decoded from %x", again, b)
		}
	})
}
