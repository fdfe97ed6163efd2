package e2e_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/extproc"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// updateHostile rewrites the generated configurations of testdata/hostile and their golden
// errors: go test ./e2e -run TestHostileLimitFiles -update-hostile
var updateHostile = flag.Bool("update-hostile", false, "rewrite testdata/hostile's generated configurations and golden .err files")

// PutBucketCors's limits (s3-cors-semantics.md §1.3), which s3cors enforces per bucket.
const (
	limitRules    = 100
	limitXMLBytes = 64 << 10
	limitIDChars  = 255
)

// limitConfig is one bucket, "limits", holding rules rules, each with an ID of idChars
// characters (multi-byte ones when wide, so that characters and bytes differ), padded so that
// the bucket's document as PutBucketCors receives it (XML) is exactly xmlBytes long when
// xmlBytes is not 0.
func limitConfig(t testing.TB, rules, idChars int, wide bool, xmlBytes int) []byte {
	t.Helper()
	b := &evaluator.BucketCORS{Form: evaluator.FormAWSJSON}
	for i := range rules {
		r := evaluator.Rule{
			AllowedOrigins: []string{fmt.Sprintf("https://r%03d.example.com", i)},
			AllowedMethods: []string{"GET"},
		}
		if idChars > 0 {
			// "é" is two bytes, "𝄞" four: an ID can be 255 characters but 700 bytes.
			id := fmt.Sprintf("r%03d-", i)
			for utf8.RuneCountInString(id) < idChars {
				if !wide {
					id += "i"
				} else if utf8.RuneCountInString(id)%2 == 0 {
					id += "é"
				} else {
					id += "𝄞"
				}
			}
			r.ID = &id
		}
		b.Rules = append(b.Rules, r)
	}
	if xmlBytes > 0 {
		// One more origin, "https://ppp….example.com", takes the document to the exact size.
		const frame = len("<AllowedOrigin>https://.example.com</AllowedOrigin>")
		pad := xmlBytes - len(b.XML()) - frame
		if pad < 0 {
			t.Fatalf("limitConfig: %d rules with %d-character IDs are already over %d bytes as XML", rules, idChars, xmlBytes)
		}
		b.Rules[0].AllowedOrigins = append(b.Rules[0].AllowedOrigins, "https://"+strings.Repeat("p", pad)+".example.com")
		if n := len(b.XML()); n != xmlBytes {
			t.Fatalf("limitConfig: padded to %d bytes as XML, want %d", n, xmlBytes)
		}
	}
	var doc bytes.Buffer
	doc.WriteString("{\"buckets\": {\"limits\": ")
	doc.Write(bytes.TrimSpace(b.JSON()))
	doc.WriteString("}}\n")
	return doc.Bytes()
}

// limitFiles are the generated configurations, at each limit and one past it. at-limit-*
// must be accepted by every surface, past-limit-* refused with every problem listed.
func limitFiles(t testing.TB) map[string][]byte {
	return map[string][]byte{
		"at-limit-rules.json":     limitConfig(t, limitRules, 0, false, 0),
		"past-limit-rules.json":   limitConfig(t, limitRules+1, 0, false, 0),
		"at-limit-size.json":      limitConfig(t, 1, 0, false, limitXMLBytes),
		"past-limit-size.json":    limitConfig(t, 1, 0, false, limitXMLBytes+1),
		"at-limit-id.json":        limitConfig(t, 1, limitIDChars, true, 0),
		"past-limit-id.json":      limitConfig(t, 1, limitIDChars+1, true, 0),
		"at-limit-all.json":       limitConfig(t, limitRules, limitIDChars, false, limitXMLBytes),
		"past-limit-all.json":     limitConfig(t, limitRules+1, limitIDChars+1, true, 0),
		"past-limit-id-size.json": limitConfig(t, limitRules, limitIDChars+1, false, limitXMLBytes+1),
	}
}

func hostileDir(t testing.TB) string {
	return filepath.Join(testenv.RepoRoot(t), "testdata", "hostile")
}

// TestHostileLimitFiles keeps the generated files in testdata/hostile exactly at (and one
// past) the limits: they are what the other tests, and users reading them, rely on.
func TestHostileLimitFiles(t *testing.T) {
	dir := hostileDir(t)
	for name, want := range limitFiles(t) {
		path := filepath.Join(dir, name)
		if *updateHostile {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (regenerate with -update-hostile)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is not what the generator makes (regenerate with -update-hostile)", name)
		}
	}
}

// hostileConfigFile is a configuration of testdata/hostile and what every surface must say.
type hostileConfigFile struct {
	name string
	data []byte
	// golden is the evaluator's error, "" when the configuration must be accepted.
	golden string
}

// hostileConfigFiles lists testdata/hostile's configurations: *.json other than requests.json;
// a sibling .err holds the expected rejection.
func hostileConfigFiles(t testing.TB) []hostileConfigFile {
	t.Helper()
	dir := hostileDir(t)
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out []hostileConfigFile
	for _, p := range paths {
		name := filepath.Base(p)
		if name == "requests.json" {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f := hostileConfigFile{name: name, data: data}
		if g, err := os.ReadFile(strings.TrimSuffix(p, ".json") + ".err"); err == nil {
			f.golden = string(g)
		} else if !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	if len(out) < len(limitFiles(t)) {
		t.Fatalf("only %d configurations in %s", len(out), dir)
	}
	return out
}

// TestHostileConfigsEvaluator: every configuration at a limit is accepted, every one past a
// limit (or otherwise hostile) is refused with exactly the golden problems.
func TestHostileConfigsEvaluator(t *testing.T) {
	for _, f := range hostileConfigFiles(t) {
		t.Run(f.name, func(t *testing.T) {
			_, err := evaluator.Load(f.data)
			checkGolden(t, f, err)
		})
	}
}

// TestHostileConfigsExtproc: the ext_proc server's loader says exactly what the evaluator says.
// Being a file loader, it drops a UTF-8 byte-order mark first (editors add one); the plugin
// configuration Envoy hands the wasm filter never has one, and the evaluator refuses it.
func TestHostileConfigsExtproc(t *testing.T) {
	for _, f := range hostileConfigFiles(t) {
		t.Run(f.name, func(t *testing.T) {
			_, err := extproc.LoadConfig(f.name, f.data)
			var ve *evaluator.ValidationError
			if err != nil && !errors.As(err, &ve) {
				t.Fatalf("error does not wrap the evaluator's ValidationError: %v", err)
			}
			_, want := evaluator.Load(bytes.TrimPrefix(f.data, []byte("\ufeff")))
			switch {
			case want == nil && err != nil:
				t.Fatalf("refused, the evaluator accepts it: %v", err)
			case want != nil && ve == nil:
				t.Fatalf("accepted, the evaluator refuses it: %v", want)
			case want != nil && ve.Error() != want.Error():
				t.Errorf("error differs from the evaluator's:\n--- ext_proc\n%s\n--- evaluator\n%s", ve, want)
			}
		})
	}
}

// checkGolden compares a load error with f's golden file; -update-hostile rewrites it.
func checkGolden(t *testing.T, f hostileConfigFile, err error) {
	t.Helper()
	accept := strings.HasPrefix(f.name, "at-limit-") || strings.HasPrefix(f.name, "ok-")
	switch {
	case accept && err != nil:
		t.Fatalf("refused, want accepted: %v", err)
	case accept:
		return
	case err == nil:
		t.Fatalf("accepted, want refused")
	}
	got := err.Error() + "\n"
	if *updateHostile {
		if werr := os.WriteFile(filepath.Join(hostileDir(t), strings.TrimSuffix(f.name, ".json")+".err"), []byte(got), 0o644); werr != nil {
			t.Fatal(werr)
		}
		return
	}
	if got != f.golden {
		t.Errorf("error differs from the golden file:\n--- got\n%s--- want\n%s", got, f.golden)
	}
}
