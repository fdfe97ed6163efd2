package main

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRenderSeries(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "soak.csv")
	csv := "series,seconds,guest_mem_bytes,p99_us\n" +
		"serve,0,1000,10\nserve,1,1200,12\nserve,2,1200,11\n" +
		"extproc,0,500,5\nextproc,1,600,6\n"
	if err := os.WriteFile(in, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "soak.png")
	var stderr bytes.Buffer
	if code := run([]string{"-in", in, "-out", out}, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	// Two y columns: two panels stacked.
	if want := titleH + legendH + 2*(panelH+marginT+marginB); img.Bounds().Dy() != want {
		t.Errorf("height %d, want %d", img.Bounds().Dy(), want)
	}
}

func TestRejectsBadCSV(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"not a number": "seconds,mem\n0,abc\n",
		"one column":   "seconds\n0\n",
		"no rows":      "seconds,mem\n",
	} {
		in := filepath.Join(dir, "bad.csv")
		if err := os.WriteFile(in, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		if code := run([]string{"-in", in, "-out", filepath.Join(dir, "x.png")}, &stderr); code != 1 {
			t.Errorf("%s: exit %d, want 1", name, code)
		}
		if !strings.HasPrefix(stderr.String(), "plot: ") {
			t.Errorf("%s: error %q lacks the plot: prefix", name, stderr.String())
		}
	}
}
