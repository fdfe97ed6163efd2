package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/extproc"
)

// cliRun runs the CLI in-process and returns stdout and stderr together, with the exit code.
func cliRun(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	code := run(args, &out, &out)
	return out.String(), code
}

// writeTempConfig writes content to name in a fresh directory and returns its path.
func writeTempConfig(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConfigCommandsNameBareDocument: every command that takes an s3cors configuration says
// plainly when it is given a bare bucket CORS document, the form users already have, and how
// to wrap it, instead of "not a string", "not an array" or "unknown key".
func TestConfigCommandsNameBareDocument(t *testing.T) {
	docs := []struct{ file, form, wrap string }{
		{"cors.xml", "S3 XML", `{"buckets": {"NAME": "<CORSConfiguration>...</CORSConfiguration>"}}`},
		{"cors-aws.json", "AWS JSON", `{"buckets": {"NAME": {"CORSRules": [...]}}}`},
		{"cors-console.json", "console JSON", `{"buckets": {"NAME": [...]}}`},
	}
	for _, d := range docs {
		path := filepath.Join("testdata", "in", d.file)
		for _, args := range [][]string{
			{"serve", "--config", path, "--listen", "127.0.0.1:0"},
			{"explain", "--config", path, "--bucket", "b", "--method", "GET", "--origin", "https://a.example"},
			{"manifest", "--config", path, "--target", "envoy-wasm"},
			{"validate", "--kind", "config", path},
		} {
			t.Run(args[0]+"/"+d.file, func(t *testing.T) {
				out, code := cliRun(t, args...)
				if code != exitFailure {
					t.Errorf("exit %d, want %d", code, exitFailure)
				}
				// manifest goes through the evaluator, which names the form without the file.
				if !strings.Contains(out, "bucket CORS document ("+d.form+")") && !strings.Contains(out, "bucket CORS document (S3 "+d.form+")") {
					t.Errorf("output does not name a bucket CORS document (%s):\n%s", d.form, out)
				}
				if !strings.Contains(out, "not an s3cors configuration: put it under a bucket name, "+d.wrap) {
					t.Errorf("output does not say how to wrap it (%s):\n%s", d.wrap, out)
				}
				for _, misleading := range []string{"unknown key", "missing required key", "must be a JSON object"} {
					if strings.Contains(out, misleading) {
						t.Errorf("output still says %q:\n%s", misleading, out)
					}
				}
			})
		}
	}
}

// TestExtprocLoaderNamesBareDocument: the ext_proc server's loader (which reads an .xml file
// as YAML) reaches the same finding through the evaluator.
func TestExtprocLoaderNamesBareDocument(t *testing.T) {
	for _, name := range []string{"cors.xml", "cors-aws.json", "cors-console.json"} {
		_, err := extproc.LoadConfigFile(filepath.Join("testdata", "in", name))
		var ve *evaluator.ValidationError
		if !errors.As(err, &ve) || len(ve.Problems) != 1 || !strings.Contains(ve.Problems[0].Message, "is a bucket CORS document") {
			t.Errorf("%s: error %v, want one problem naming a bucket CORS document", name, err)
		}
	}
}

// TestEmptyConfigFile: an empty file is called empty, not "null" or "unexpected end of input".
func TestEmptyConfigFile(t *testing.T) {
	for _, name := range []string{"empty.json", "empty.yaml", "blank"} {
		path := writeTempConfig(t, name, " \n\t\n")
		for _, args := range [][]string{
			{"validate", path},
			{"validate", "--kind", "config", path},
			{"validate", "--kind", "bucket-cors", path},
			{"explain", "--config", path, "--bucket", "b", "--method", "GET", "--origin", "https://a.example"},
			{"serve", "--config", path, "--listen", "127.0.0.1:0"},
			{"convert", path, "--to", "xml"},
		} {
			out, code := cliRun(t, args...)
			if code != exitFailure || !strings.Contains(out, "is empty") || strings.Contains(out, "null") || strings.Contains(out, "end of input") {
				t.Errorf("%s: exit %d, want %d and the file called empty:\n%s", strings.Join(args, " "), code, exitFailure, out)
			}
			if strings.Contains(out, "checks it as it is") {
				t.Errorf("%s: suggests validating an empty file:\n%s", strings.Join(args, " "), out)
			}
		}
	}
}

// TestConvertConfigurationWithoutBucket: convert given an s3cors configuration and no
// --bucket names the buckets to choose from, instead of reporting the configuration's keys as
// unknown CORS members.
func TestConvertConfigurationWithoutBucket(t *testing.T) {
	for _, tc := range []struct{ name, content, want string }{
		{"config.json", `{"buckets": {"a": null, "b": [], "c": "<x"}, "unlistedBuckets": "forward"}`, "(buckets: a, b, c)"},
		{"config.yaml", "buckets:\n  website: null\n  fonts: null\n", "(buckets: website, fonts)"},
		{"none.json", `{"buckets": {}}`, "(it lists no buckets)"},
		{"many.json", `{"buckets": {"b0": null, "b1": null, "b2": null, "b3": null, "b4": null, "b5": null, "b6": null, "b7": null, "b8": null, "b9": null, "b10": null, "b11": null}}`,
			"(buckets: b0, b1, b2, b3, b4, b5, b6, b7, b8, b9 and 2 more)"},
	} {
		path := writeTempConfig(t, tc.name, tc.content)
		out, code := cliRun(t, "convert", path, "--to", "xml")
		if code != exitUsage {
			t.Errorf("%s: exit %d, want %d", tc.name, code, exitUsage)
		}
		if !strings.Contains(out, "is an s3cors configuration: pass --bucket NAME") || !strings.Contains(out, tc.want) {
			t.Errorf("%s: output does not ask for --bucket %s:\n%s", tc.name, tc.want, out)
		}
		if strings.Contains(out, "unknown key") {
			t.Errorf("%s: output still reports unknown keys:\n%s", tc.name, out)
		}
	}
}

// TestConvertBareDocumentWithBucket: --bucket on a bare bucket document is a usage error that
// says to drop it.
func TestConvertBareDocumentWithBucket(t *testing.T) {
	out, code := cliRun(t, "convert", filepath.Join("testdata", "in", "cors.xml"), "--bucket", "website", "--to", "json")
	if code != exitUsage || !strings.Contains(out, "is a bucket CORS document (S3 XML), not an s3cors configuration: drop --bucket") {
		t.Errorf("exit %d, want %d and a hint to drop --bucket:\n%s", code, exitUsage, out)
	}
}

// TestValidateBareDocumentWithoutRules: "use null for a bucket without CORS" only makes sense
// inside an s3cors configuration, so a bare document without rules is not told it.
func TestValidateBareDocumentWithoutRules(t *testing.T) {
	for name, content := range map[string]string{
		"empty.xml":     `<CORSConfiguration></CORSConfiguration>`,
		"console.json":  `[]`,
		"aws-form.json": `{"CORSRules": []}`,
	} {
		out, code := cliRun(t, "validate", writeTempConfig(t, name, content))
		if code != exitFailure || !strings.Contains(out, "needs 1 to 100 rules") {
			t.Errorf("%s: exit %d, want %d and the rule count problem:\n%s", name, code, exitFailure, out)
		}
		if strings.Contains(out, "null") {
			t.Errorf("%s: a bare document is told about null:\n%s", name, out)
		}
	}
	// Inside a configuration the advice stands.
	out, _ := cliRun(t, "validate", writeTempConfig(t, "config.json", `{"buckets": {"b": []}}`))
	if !strings.Contains(out, "use null for a bucket without CORS") {
		t.Errorf("a configuration's empty bucket lost the null advice:\n%s", out)
	}
}

func TestDetectKind(t *testing.T) {
	for doc, want := range map[string]docKind{
		"<CORSConfiguration/>":              kindBucketCORS,
		"\ufeff  [{}]":                      kindBucketCORS,
		`{"CORSRules": []}`:                 kindBucketCORS,
		`{"buckets": {}, "CORSRules": []}`:  kindConfig, // a configuration with a stray key
		`{"buckets": {}}`:                   kindConfig,
		"CORSRules:\n  - AllowedOrigins: x": kindConfig, // YAML is read as a configuration
		"":                                  kindConfig,
	} {
		if got := detectKind([]byte(doc)); got != want {
			t.Errorf("detectKind(%q) = %q, want %q", doc, got, want)
		}
	}
}
