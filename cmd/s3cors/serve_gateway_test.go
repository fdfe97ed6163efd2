package main

import (
	"strings"
	"testing"
)

// TestServeHelpNamesTheReloadGap: /healthz cannot see a reload that failed (the host keeps
// the VM failed and answers its requests 503 while Failed looks recovered from), so the help
// says so where an operator choosing --failure-policy reads it.
func TestServeHelpNamesTheReloadGap(t *testing.T) {
	h := runCLI(t, "serve", "--help")
	help := strings.Join(strings.Fields(h.stdout), " ")
	for _, want := range []string{
		"under reload, a reload that itself fails leaves the VM failed and its requests 503 while /healthz still says ok",
		`"Failed to reload WASM plugin"`,
	} {
		if !strings.Contains(help, want) {
			t.Errorf("serve --help lacks %q:\n%s", want, h.stdout)
		}
	}
}
