package e2e_test

import (
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/testing/casetable"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// TestRealEnvoyImage runs every case table through each pinned real Envoy with the wasm
// filter configured by the table's policy image: raw, as a google.protobuf.BytesValue (Envoy
// hands its bytes to the module unchanged), and wrapped in JSON as a StringValue (what
// Istio's pluginConfig becomes).
func TestRealEnvoyImage(t *testing.T) {
	for _, e := range testenv.Envoys(t) {
		t.Run(e.Version, func(t *testing.T) {
			tables := realEnvoyTables(t)
			store := startRealEnvoyStore(t, tables)
			for _, form := range []string{"bytes", "wrapped"} {
				t.Run(form, func(t *testing.T) {
					images := slices.Clone(tables)
					for i := range images {
						images[i].Config = testenv.PolicyImage(t, tables[i].Config)
						if form == "wrapped" {
							images[i].Config = evaluator.WrapImage(images[i].Config)
						}
					}
					boot := realEnvoyBootstrap(t, "wasm.yaml", images, store.addr, testenv.Module(t), nil)
					env := startRealEnvoy(t, e.Path, boot)
					runTablesThroughEnvoy(t, "image-"+form, env, images, store, nil)
				})
			}
		})
	}
}

// TestRealEnvoyImageMemory starts Envoy 1.40 (--concurrency 2: a canary and two worker VMs)
// with 10,000 and 100,000 buckets as a policy image, and 10,000 as JSON, checks that the
// last bucket's rules are served on fresh connections (spread over the workers), and logs
// Envoy's resident memory against a one-bucket image (BENCHMARKS.md, "Policy images").
func TestRealEnvoyImageMemory(t *testing.T) {
	bin := realEnvoy140(t)
	store := startRealEnvoyStore(t, nil)
	var floor int
	for _, c := range []struct {
		name    string
		buckets int
		json    bool
	}{{"image-1", 1, false}, {"image-10000", 10000, false}, {"json-10000", 10000, true}, {"image-100000", 100000, false}} {
		config := testenv.StressConfig(c.buckets)
		if !c.json {
			config = testenv.PolicyImage(t, config)
		}
		boot := realEnvoyBootstrap(t, "wasm.yaml", []casetable.Table{{Config: config}}, store.addr, testenv.Module(t), nil)
		env := startRealEnvoy(t, bin, boot)
		addr := env.listeners["s3-0"]
		last := c.buckets - 1
		for i := 0; i < 8; i++ {
			req, _ := http.NewRequest(http.MethodOptions, "http://"+addr+"/b"+strconv.Itoa(last)+"/k", nil)
			req.Header.Set("Origin", "https://a"+strconv.Itoa(last)+".example")
			req.Header.Set("Access-Control-Request-Method", "PUT")
			req.Close = true // a new connection each time, so both workers answer some
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("%s: preflight to bucket b%d: %d, want 200", c.name, last, resp.StatusCode)
			}
		}
		rss := envoyRSS(t, env.pid)
		if floor == 0 {
			floor = rss
		}
		t.Logf("%s: Envoy RSS %.1f MiB, %.1f MiB over the one-bucket image", c.name, float64(rss)/1024, float64(rss-floor)/1024)
	}
}

// envoyRSS is a process's resident set in KiB (VmRSS).
func envoyRSS(t *testing.T, pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// realEnvoy140 is the pinned Envoy 1.40 release, which the image measurements use.
func realEnvoy140(t *testing.T) string {
	t.Helper()
	for _, e := range testenv.Envoys(t) {
		if strings.HasPrefix(e.Version, "1.40.") {
			return e.Path
		}
	}
	t.Fatal("no Envoy 1.40 among the pinned releases")
	return ""
}
