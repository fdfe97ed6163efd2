package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3cors/s3cors/evaluator"
)

func TestCompile(t *testing.T) {
	in := func(name string) string { return filepath.Join("testdata", "in", name) }
	runGolden(t, []goldenCase{
		{"compile-wrap-stdout", []string{"compile", in("config.json"), "--wrap", "-o", "-"}, 0},
		{"compile-bad-method", []string{"compile", in("bad-method.json"), "-o", "-"}, 1},
		{"compile-bucket-document", []string{"compile", in("cors.xml"), "-o", "-"}, 1},
		{"compile-no-output", []string{"compile", in("config.json")}, 2},
	})
}

// TestCompileWritesALoadableImage: the file compile writes (from YAML too) loads, raw and
// wrapped, and decides as the configuration does.
func TestCompileWritesALoadableImage(t *testing.T) {
	dir := t.TempDir()
	for _, src := range []string{"config.json", "config.yaml"} {
		for _, wrap := range []bool{false, true} {
			out := filepath.Join(dir, src+".img")
			args := []string{"compile", filepath.Join("testdata", "in", src), "-o", out}
			if wrap {
				args = append(args, "--wrap")
			}
			r := runCLI(t, args...)
			if r.code != 0 || !strings.Contains(r.stdout, out+": ") || !strings.Contains(r.stdout, "format version 1") {
				t.Fatalf("%v: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
			}
			data, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if evaluator.IsImage(data) == wrap {
				t.Fatalf("%v: wrote an image %v, want %v", args, !wrap, wrap)
			}
			img, err := evaluator.LoadAny(data)
			if err != nil {
				t.Fatalf("%v: %v", args, err)
			}
			pol, _, err := loadPolicy(filepath.Join("testdata", "in", src))
			if err != nil {
				t.Fatal(err)
			}
			r1 := &evaluator.Request{Method: "OPTIONS", Authority: "127.0.0.1", Path: "/website/a.txt", Origin: "https://www.example.com", HasOrigin: true, RequestMethod: "PUT", HasRequestMethod: true}
			var a, b evaluator.Decision
			pol.Evaluate(r1, &a)
			img.Evaluate(r1, &b)
			if a.Outcome != b.Outcome || a.Reason != b.Reason || a.Rule != b.Rule || a.Status != b.Status {
				t.Errorf("%v: image decides %v %v %d, configuration %v %v %d", args, b.Outcome, b.Reason, b.Status, a.Outcome, a.Reason, a.Status)
			}
		}
	}
}
