package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestServeHelpNamesTheFailedReload: the help says /healthz turns 503 under reload when
// replacing a failed VM fails too, where an operator choosing --failure-policy reads it.
func TestServeHelpNamesTheFailedReload(t *testing.T) {
	h := runCLI(t, "serve", "--help")
	help := strings.Join(strings.Fields(h.stdout), " ")
	if want := "or under reload while replacing a failed VM fails too"; !strings.Contains(help, want) {
		t.Errorf("serve --help lacks %q:\n%s", want, h.stdout)
	}
}

// TestServeUpstreamErrorHidesThePassword: an --upstream URL that does not parse is shown in
// the error, its password replaced: the error reaches terminals and CI logs.
func TestServeUpstreamErrorHidesThePassword(t *testing.T) {
	good := filepath.Join("testdata", "in", "config.json")
	for _, c := range []struct{ upstream, shown string }{
		{"http://admin:hunter2@127.0.0.1:9000x", `"http://admin:xxxxx@127.0.0.1:9000x"`},
		{"http://admin:hunter2@[::1", `"http://admin:xxxxx@[::1"`},
		{"http://admin:hun%zzter2@127.0.0.1:9000", `"http://admin:xxxxx@127.0.0.1:9000"`},
		{"http://admin:hunter2 @127.0.0.1:9000", `"http://admin:xxxxx@127.0.0.1:9000"`},
		// No scheme: url.Parse reads "admin" as one and the rest as opaque.
		{"admin:hunter2@127.0.0.1:9000", `"admin:xxxxx@127.0.0.1:9000"`},
	} {
		r := runCLI(t, "serve", "--config", good, "--wasm", good, "--upstream", c.upstream)
		if r.code != 2 || !strings.Contains(r.stderr, "upstream "+c.shown) {
			t.Errorf("--upstream %s: exit %d, stderr %q, want %s", c.upstream, r.code, r.stderr, c.shown)
		}
		if strings.Contains(r.stderr, "hunter2") || strings.Contains(r.stderr, "zzter") {
			t.Errorf("--upstream %s: the error shows the password: %q", c.upstream, r.stderr)
		}
	}
}
