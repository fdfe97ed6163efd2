package main

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/extproc"
)

// cliOutput runs the CLI in-process and returns stdout and stderr together, with the exit
// code.
func cliOutput(t *testing.T, args ...string) (string, int) {
	t.Helper()
	r := runCLI(t, args...)
	return r.stdout + r.stderr, r.code
}

// tempConfig writes content to name in a fresh directory and returns its path.
func tempConfig(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	writeFile(t, path, content)
	return path
}

// The evaluator's problems for the mistakes below, spelt out so that a change of wording
// anywhere fails here.
const (
	wrapAdvice = `, not an s3cors configuration: put it under a bucket name, {"buckets": {"NAME": `
	bareXML    = `this is a bucket CORS document (S3 XML)` + wrapAdvice + `"<CORSConfiguration>...</CORSConfiguration>"}}`
	bareAWS    = `this is a bucket CORS document (AWS form)` + wrapAdvice + `{"CORSRules": [...]}}}`
	bareConsol = `this is a bucket CORS document (S3 console form)` + wrapAdvice + `[...]}}`
	emptyConf  = `the configuration is empty: an s3cors configuration is an object with at least "buckets", e.g. {"buckets": {}}`
)

// TestConfigCommandsNameBareDocument: every command that takes an s3cors configuration says
// plainly when it is given a bare bucket CORS document, the form users already have, and how
// to wrap it, in the evaluator's words, with only the file name added, instead of "not a
// string", "not an array" or "unknown key". A YAML bucket document is not called JSON.
func TestConfigCommandsNameBareDocument(t *testing.T) {
	yamlDoc := tempConfig(t, "cors.yaml", "CORSRules:\n  - AllowedOrigins: ['*']\n    AllowedMethods: [GET]\n")
	docs := []struct {
		path, msg string
		yaml      bool // not readable as a bucket document: no --kind auto advice
	}{
		{filepath.Join("testdata", "in", "cors.xml"), bareXML, false},
		{filepath.Join("testdata", "in", "cors-aws.json"), bareAWS, false},
		{filepath.Join("testdata", "in", "cors-console.json"), bareConsol, false},
		{yamlDoc, bareAWS, true},
	}
	for _, d := range docs {
		loaded := "configuration " + strconv.Quote(d.path) + ": " + d.msg + " (s3cors validate " + d.path + " checks it as it is)\n"
		if d.yaml { // validate would not read it as a bucket document either: no advice
			loaded = "configuration " + strconv.Quote(d.path) + ": " + d.msg + "\n"
		}
		validated := "  InvalidConfiguration: " + d.msg + "\n"
		if !d.yaml {
			validated = "  InvalidConfiguration: " + d.msg + ", or validate it as a bucket document (--kind auto)\n"
		}
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"serve", "--config", d.path, "--listen", "127.0.0.1:0"}, loaded},
			{[]string{"explain", "--config", d.path, "--bucket", "b", "--method", "GET", "--origin", "https://a.example"}, loaded},
			{[]string{"manifest", "--config", d.path, "--target", "envoy-wasm"}, "  InvalidConfiguration: " + d.msg + "\n"},
			{[]string{"validate", "--kind", "config", d.path}, validated},
		} {
			t.Run(tc.args[0]+"/"+filepath.Base(d.path), func(t *testing.T) {
				out, code := cliOutput(t, tc.args...)
				if code != exitFailure {
					t.Errorf("exit %d, want %d", code, exitFailure)
				}
				if !strings.Contains(out, tc.want) {
					t.Errorf("output:\n%s\nwant it to say:\n%s", out, tc.want)
				}
			})
		}
	}
	// A YAML bucket document validated as it comes (auto) is read as a configuration, and
	// named as a bucket document by the evaluator.
	out, _ := cliOutput(t, "validate", yamlDoc)
	if want := "  InvalidConfiguration: " + bareAWS + "\n"; !strings.Contains(out, want) {
		t.Errorf("validate %s:\n%s\nwant it to say:\n%s", yamlDoc, out, want)
	}
}

// TestConfigHintQuotesPath: the validate command a refusal suggests can be pasted into a
// shell as it is, whatever the path holds.
func TestConfigHintQuotesPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "it's my $HOME")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "cors.json")
	writeFile(t, path, `{"CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]}`)
	r := runCLI(t, "serve", "--config", path, "--listen", "127.0.0.1:0")
	m := regexp.MustCompile(`\((s3cors validate .*) checks it as it is\)`).FindStringSubmatch(r.stderr)
	if m == nil {
		t.Fatalf("no validate command in:\n%s", r.stderr)
	}
	words, err := shellWords(m[1])
	if err != nil || !reflect.DeepEqual(words, []string{"s3cors", "validate", path}) {
		t.Errorf("command %s reads as %q (%v), want [s3cors validate %q]", m[1], words, err, path)
	}
}

// TestExtprocLoaderNamesBareDocument: the ext_proc server's loader (which reads an .xml file
// as YAML) reaches the same finding, in the same words, through the evaluator.
func TestExtprocLoaderNamesBareDocument(t *testing.T) {
	for name, want := range map[string]string{"cors.xml": bareXML, "cors-aws.json": bareAWS, "cors-console.json": bareConsol} {
		_, err := extproc.LoadConfigFile(filepath.Join("testdata", "in", name))
		var ve *evaluator.ValidationError
		if !errors.As(err, &ve) || len(ve.Problems) != 1 || ve.Problems[0].Message != want {
			t.Errorf("%s: error %v, want the one problem %q", name, err, want)
		}
	}
}

// TestEmptyConfigFile: a file with nothing in it (blanks, a byte-order mark, YAML comments)
// gets the evaluator's "empty configuration" problem on every command that loads a
// configuration, with the file's name; not "null" or "unexpected end of input", and no
// suggestion to validate it.
func TestEmptyConfigFile(t *testing.T) {
	for _, tc := range []struct{ name, content string }{
		{"empty.json", " \n\t\n"},
		{"empty.yaml", " \n\t\n"},
		{"blank", ""},
		{"bom.json", "\ufeff\n"},
		{"comments.yaml", "# buckets: {}\n"},
	} {
		path := tempConfig(t, tc.name, tc.content)
		loaded := "configuration " + strconv.Quote(path) + ": evaluator: invalid configuration\n  InvalidConfiguration: " + emptyConf + "\n"
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"validate", path}, "  InvalidConfiguration: " + emptyConf + "\n"},
			{[]string{"validate", "--kind", "config", path}, "  InvalidConfiguration: " + emptyConf + "\n"},
			{[]string{"explain", "--config", path, "--bucket", "b", "--method", "GET", "--origin", "https://a.example"}, loaded},
			{[]string{"serve", "--config", path, "--listen", "127.0.0.1:0"}, loaded},
			{[]string{"manifest", "--config", path, "--target", "envoy-wasm"}, "  InvalidConfiguration: " + emptyConf + "\n"},
		} {
			out, code := cliOutput(t, c.args...)
			if code != exitFailure || !strings.Contains(out, c.want) {
				t.Errorf("%s: exit %d, want %d and:\n%s\ngot:\n%s", strings.Join(c.args, " "), code, exitFailure, c.want, out)
			}
			if strings.Contains(out, "checks it as it is") {
				t.Errorf("%s: suggests validating an empty file:\n%s", strings.Join(c.args, " "), out)
			}
		}
		// A bucket document has its own empty message, the same from validate and convert;
		// neither reads YAML, so a comment is no blank there.
		if tc.name == "comments.yaml" {
			continue
		}
		for _, args := range [][]string{{"validate", "--kind", "bucket-cors", path}, {"convert", path, "--to", "xml"}} {
			out, code := cliOutput(t, args...)
			if code != exitFailure || !strings.Contains(out, msgEmptyBucketDocument) {
				t.Errorf("%s: exit %d, want %d and:\n%s\ngot:\n%s", strings.Join(args, " "), code, exitFailure, msgEmptyBucketDocument, out)
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
		path := tempConfig(t, tc.name, tc.content)
		out, code := cliOutput(t, "convert", path, "--to", "xml")
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
	out, code := cliOutput(t, "convert", filepath.Join("testdata", "in", "cors.xml"), "--bucket", "website", "--to", "json")
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
		out, code := cliOutput(t, "validate", tempConfig(t, name, content))
		if code != exitFailure || !strings.Contains(out, "needs 1 to 100 rules") {
			t.Errorf("%s: exit %d, want %d and the rule count problem:\n%s", name, code, exitFailure, out)
		}
		if strings.Contains(out, "null") {
			t.Errorf("%s: a bare document is told about null:\n%s", name, out)
		}
	}
	// Inside a configuration the advice stands.
	out, _ := cliOutput(t, "validate", tempConfig(t, "config.json", `{"buckets": {"b": []}}`))
	if !strings.Contains(out, "use null for a bucket without CORS") {
		t.Errorf("a configuration's empty bucket lost the null advice:\n%s", out)
	}
}

// TestBareDocumentAdviceOnlyWhenItHelps: a JSON string holding XML is a bucket document the
// evaluator names, but validate reads it as a configuration: no command points the user at
// validating it "as it is" or with --kind auto, which would say the same again.
func TestBareDocumentAdviceOnlyWhenItHelps(t *testing.T) {
	path := tempConfig(t, "str.json", `"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>"`)
	for _, args := range [][]string{
		{"validate", path},
		{"validate", "--kind", "config", path},
		{"explain", "--config", path, "--bucket", "b", "--method", "GET"},
	} {
		out, code := cliOutput(t, args...)
		if code != exitFailure || !strings.Contains(out, bareXML) {
			t.Errorf("%s: exit %d, want %d and %q:\n%s", strings.Join(args, " "), code, exitFailure, bareXML, out)
		}
		if strings.Contains(out, "--kind auto") || strings.Contains(out, "checks it as it is") {
			t.Errorf("%s: advice that would only repeat the problem:\n%s", strings.Join(args, " "), out)
		}
	}
}
