package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestControlplaneUsage: missing files are usage errors; unreadable or invalid ones fail
// with the file named, and a credentials error never shows a secret.
func TestControlplaneUsage(t *testing.T) {
	dir := t.TempDir()
	seed := filepath.Join(dir, "seed.json")
	creds := filepath.Join(dir, "keys.json")
	if err := os.WriteFile(seed, []byte(`{"buckets": {"website": null}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(creds, []byte(`{"keys": [{"accessKeyId": "AK", "secretAccessKey": "TOPSECRET", "buckets": []}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.json")
	if err := os.WriteFile(good, []byte(`{"keys": [{"accessKeyId": "AK", "secretAccessKey": "TOPSECRET", "buckets": ["*"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no config", []string{"controlplane", "--credentials", creds}, 2, "--config is required"},
		{"no credentials", []string{"controlplane", "--config", seed}, 2, "--credentials is required"},
		{"missing seed", []string{"controlplane", "--config", filepath.Join(dir, "nope.json"), "--credentials", creds}, 1, "nope.json"},
		{"state bucket without endpoint", []string{"controlplane", "--config", seed, "--credentials", good, "--state-bucket", "b"}, 2, "--state-bucket needs --state-endpoint"},
		{"key without buckets", []string{"controlplane", "--config", seed, "--credentials", creds}, 1, `keys[0] ("AK"): buckets is empty`},
	} {
		r := runCLI(t, append(tc.args, "--listen", "127.0.0.1:0", "--xds-listen", "127.0.0.1:0", "--metrics-listen", "", "--state", filepath.Join(dir, "state.json"))...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and %q", tc.name, r.code, r.stderr, tc.code, tc.want)
		}
		if strings.Contains(r.stderr, "TOPSECRET") {
			t.Errorf("%s: a secret reached stderr", tc.name)
		}
	}
}
