package demo

import (
	"bytes"
	"encoding/binary"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestFiles(t *testing.T) {
	for _, name := range []string{"index.html", "app.js", "style.css"} {
		b, err := fs.ReadFile(Files(), name)
		if err != nil || len(b) == 0 {
			t.Errorf("%s: %v (%d bytes)", name, err, len(b))
		}
	}
}

func TestHandler(t *testing.T) {
	h := Handler("http://127.0.0.1:8080", "http://127.0.0.1:8082")
	for path, want := range map[string]string{
		"/":          "<title>s3cors demo",
		"/config.js": `window.S3CORS = {"debug":"http://127.0.0.1:8082","gateway":"http://127.0.0.1:8080"};`,
		"/app.js":    `DEBUG + "/debug/s3cors/explain`,
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		body, _ := io.ReadAll(rec.Result().Body)
		if rec.Code != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s = %d, body lacks %q", path, rec.Code, want)
		}
	}
}

func TestSeed(t *testing.T) {
	got := map[string]string{}
	err := Seed(func(bucket, key string, body []byte, ct string, meta map[string]string) error {
		got[bucket+"/"+key] = ct
		return nil
	}, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a/hello.txt", "a/pixel.ttf", "b/hello.txt", "b/pixel.ttf"} {
		if got[k] == "" {
			t.Errorf("%s not seeded (got %v)", k, got)
		}
	}
}

// TestFontStructure checks what browsers' font sanitisers check first: the table directory,
// the checksums and head's magic and checkSumAdjustment. The browser tests (e2e) prove
// Chromium loads it.
func TestFontStructure(t *testing.T) {
	f := Font()
	if !bytes.Equal(f, Font()) {
		t.Fatal("Font is not deterministic")
	}
	if binary.BigEndian.Uint32(f) != 0x00010000 {
		t.Fatalf("sfnt version %#x, want TrueType 0x00010000", binary.BigEndian.Uint32(f))
	}
	n := int(binary.BigEndian.Uint16(f[4:]))
	want := []string{"OS/2", "cmap", "glyf", "head", "hhea", "hmtx", "loca", "maxp", "name", "post"}
	if n != len(want) {
		t.Fatalf("%d tables, want %d", n, len(want))
	}
	if checksum(f) != 0xB1B0AFBA {
		t.Errorf("whole-font checksum %#x, want 0xB1B0AFBA", checksum(f))
	}
	for i := range n {
		rec := f[12+16*i:]
		tag := string(rec[:4])
		sum, off, length := binary.BigEndian.Uint32(rec[4:]), binary.BigEndian.Uint32(rec[8:]), binary.BigEndian.Uint32(rec[12:])
		if tag != want[i] {
			t.Errorf("table %d is %q, want %q (sorted)", i, tag, want[i])
		}
		if off%4 != 0 || int(off+length) > len(f) {
			t.Errorf("table %q at %d+%d: misaligned or out of the file", tag, off, length)
			continue
		}
		data := bytes.Clone(f[off : off+length])
		if tag == "head" {
			if binary.BigEndian.Uint32(data[12:]) != 0x5F0F3CF5 {
				t.Error("head magic number wrong")
			}
			binary.BigEndian.PutUint32(data[8:], 0) // checkSumAdjustment is excluded
		}
		if checksum(data) != sum {
			t.Errorf("table %q checksum %#x, directory says %#x", tag, checksum(data), sum)
		}
	}
}
