package e2e_test

// Propagation from PutBucketCors to both Envoys enforcing, with where the time goes: the
// control plane's push, each Envoy's ACK (it has built the new filter on its main thread),
// the first preflight that follows the new rules; and the CPU time and run-queue wait of
// each Envoy's threads.

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// propagationSeed is a seed of n buckets "p0" … "p<n-1>" without CORS.
func propagationSeed(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"buckets": {`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"p%d": null`, i)
	}
	b.WriteString(`}, "unlistedBuckets": "not-found"}`)
	return []byte(b.String())
}

// threadTimes is, per thread group of a process (Envoy's main thread "main", its workers
// "workers", every other thread "other"), the CPU time and the time spent runnable but
// waiting for a core, from /proc/<pid>/task/<tid>/schedstat.
type threadTimes map[string][2]time.Duration

func readThreadTimes(t testing.TB, pid int) threadTimes {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := threadTimes{}
	for _, task := range tasks {
		stat, err1 := os.ReadFile(filepath.Join(dir, task.Name(), "schedstat"))
		comm, err2 := os.ReadFile(filepath.Join(dir, task.Name(), "comm"))
		if err1 != nil || err2 != nil {
			continue // exited since
		}
		f := bytes.Fields(stat)
		if len(f) < 2 {
			t.Fatalf("%s/%s/schedstat: %q", dir, task.Name(), stat)
		}
		cpu, _ := strconv.ParseInt(string(f[0]), 10, 64)
		wait, _ := strconv.ParseInt(string(f[1]), 10, 64)
		group := "other"
		switch name := strings.TrimSpace(string(comm)); {
		case task.Name() == strconv.Itoa(pid):
			group = "main"
		case strings.HasPrefix(name, "wrk:"):
			group = "workers"
		}
		g := out[group]
		out[group] = [2]time.Duration{g[0] + time.Duration(cpu), g[1] + time.Duration(wait)}
	}
	return out
}

func (a threadTimes) since(b threadTimes, n int) string {
	var s []string
	for _, g := range []string{"main", "workers", "other"} {
		s = append(s, fmt.Sprintf("%s cpu %v wait %v", g, ((a[g][0]-b[g][0])/time.Duration(n)).Round(10*time.Microsecond), ((a[g][1]-b[g][1])/time.Duration(n)).Round(10*time.Microsecond)))
	}
	return strings.Join(s, "; ")
}

// enforced polls a preflight from origin for method to bucket on envoy every millisecond and
// returns when it is first allowed.
func enforced(c *http.Client, envoy, bucket, origin, method string, deadline time.Time) (time.Time, error) {
	for {
		req, _ := http.NewRequest("OPTIONS", "http://"+envoy+"/"+bucket+"/index.html", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", method)
		resp, err := c.Do(req)
		if err != nil {
			return time.Time{}, err
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("envoy %s: preflight from %s to %s still %d after 30s", envoy, origin, bucket, resp.StatusCode)
		}
		time.Sleep(time.Millisecond)
	}
}

func quantiles(d []time.Duration) string {
	d = slices.Clone(d)
	slices.Sort(d)
	q := func(p int) time.Duration { return d[min(len(d)-1, len(d)*p/100)].Round(100 * time.Microsecond) }
	return fmt.Sprintf("p50 %v p90 %v p99 %v max %v", q(50), q(90), q(99), d[len(d)-1].Round(100*time.Microsecond))
}

// propagation is a control plane process and the Envoys connected to it, for timing changes.
type propagation struct {
	plane  *planeProc
	envoys []testenv.Envoy
	envs   []*realEnvoy
	nodes  []string
	addrs  []string
	sdk    *s3.Client
	hc     *http.Client
}

// startPropagation starts the control plane on seed (a state file of its own) and the oldest
// and newest pinned Envoys on it.
func startPropagation(t *testing.T, seed []byte) *propagation {
	t.Helper()
	all := testenv.Envoys(t)
	p := &propagation{
		envoys: []testenv.Envoy{all[0], all[len(all)-1]},
		plane:  launchPlane(t, seed, []string{"--state", filepath.Join(t.TempDir(), "state.json")}, nil),
		hc:     &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}},
	}
	p.sdk = cpClient(p.plane.api, cpSecret)
	store := startRealEnvoyStore(t, nil)
	for i, e := range p.envoys {
		node := fmt.Sprintf("envoy-%d-%s", i, e.Version)
		env := startRealEnvoy(t, e.Path, cpBootstrap(t, node, store.addr, p.plane.api, p.plane.xds))
		p.envs = append(p.envs, env)
		p.addrs = append(p.addrs, env.listeners["s3"])
		p.nodes = append(p.nodes, node)
	}
	return p
}

// put changes bucket's rules to allow origin to use method and returns when and how long the
// request took.
func (p *propagation) put(t *testing.T, bucket, origin, method string) (time.Time, time.Duration) {
	t.Helper()
	start := time.Now()
	rules := corsFor(origin)
	rules.CORSRules[0].AllowedMethods = []string{method}
	if _, err := p.sdk.PutBucketCors(context.Background(), &s3.PutBucketCorsInput{Bucket: aws.String(bucket), CORSConfiguration: rules}); err != nil {
		t.Fatalf("PutBucketCors %s: %v", bucket, err)
	}
	now := time.Now()
	return now, now.Sub(start)
}

// run makes n changes, each allowing a new origin to use method on bucket(i) and waiting
// until both Envoys allow it, and logs the time from each 200 to both Envoys enforcing and
// where it went: the control plane's push (before the 200), each Envoy's ACK (it has built
// the new filter on its main thread), its first preflight under the new rules; the CPU time
// and run-queue wait of the Envoys' threads and the control plane's CPU time per change.
func (p *propagation) run(t *testing.T, n int, method string, bucket func(int) string) {
	t.Helper()
	before := []threadTimes{readThreadTimes(t, p.envs[0].pid), readThreadTimes(t, p.envs[1].pid)}
	planeBefore, err := procCPU(p.plane.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	pushesBefore := len(p.plane.logRecords(t, "filter configuration pushed"))
	ok := make([]time.Time, n)
	took := make([]time.Duration, n)
	seen := make([][2]time.Time, n)
	for i := range n {
		origin := fmt.Sprintf("https://c%d.example", i)
		ok[i], took[i] = p.put(t, bucket(i), origin, method)
		deadline := time.Now().Add(30 * time.Second)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for j, a := range p.addrs {
			wg.Go(func() { seen[i][j], errs[j] = enforced(p.hc, a, bucket(i), origin, method, deadline) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("change %d: %v", i, err)
			}
		}
	}
	planeAfter, err := procCPU(p.plane.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	after := []threadTimes{readThreadTimes(t, p.envs[0].pid), readThreadTimes(t, p.envs[1].pid)}

	pushes := p.plane.logRecords(t, "filter configuration pushed")[pushesBefore:]
	if len(pushes) != n {
		t.Fatalf("%d pushes logged for %d changes", len(pushes), n)
	}
	// An Envoy may enforce a change before its ACK reaches the control plane: wait for
	// the last ones.
	acks := map[string]time.Time{} // node + " " + xds_version
	for deadline := time.Now().Add(10 * time.Second); ; {
		for _, r := range p.plane.logRecords(t, "an Envoy acknowledged the filter configuration") {
			at, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(r["time"]))
			acks[fmt.Sprint(r["node"], " ", r["xds_version"])] = at
		}
		_, a0 := acks[fmt.Sprint(p.nodes[0], " ", pushes[n-1]["xds_version"])]
		_, a1 := acks[fmt.Sprint(p.nodes[1], " ", pushes[n-1]["xds_version"])]
		if a0 && a1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	var total, pushTo200, pushBuild []time.Duration
	toAck := [2][]time.Duration{}
	ackToSeen := [2][]time.Duration{}
	for i := range n {
		last := seen[i][0]
		if seen[i][1].After(last) {
			last = seen[i][1]
		}
		total = append(total, last.Sub(ok[i]))
		pushed, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(pushes[i]["time"]))
		pushTo200 = append(pushTo200, ok[i].Sub(pushed))
		build, _ := pushes[i]["took"].(float64) // nanoseconds in slog's JSON
		pushBuild = append(pushBuild, time.Duration(build))
		for j, node := range p.nodes {
			// Each change waits for both Envoys, so each ACKs every version.
			at, found := acks[fmt.Sprint(node, " ", pushes[i]["xds_version"])]
			if !found {
				t.Errorf("change %d: no ACK from %s of xDS version %v", i, node, pushes[i]["xds_version"])
				continue
			}
			toAck[j] = append(toAck[j], at.Sub(pushed))
			ackToSeen[j] = append(ackToSeen[j], seen[i][j].Sub(at))
		}
	}
	t.Logf("propagation over %d changes (%.0f bytes, image %v), 200 to both Envoys enforcing: %s", n, pushes[0]["bytes"], pushes[0]["image"], quantiles(total))
	t.Logf("  control plane: CPU %v per change; PutBucketCors request to 200 %s; building the xDS resource %s; push to the 200 (store fsync, response) %s",
		((planeAfter - planeBefore) / time.Duration(n)).Round(10*time.Microsecond), quantiles(took), quantiles(pushBuild), quantiles(pushTo200))
	for j, e := range p.envoys {
		if len(toAck[j]) == 0 {
			continue
		}
		t.Logf("  envoy %s: push to ACK %s; ACK to first enforcing preflight %s", e.Version, quantiles(toAck[j]), quantiles(ackToSeen[j]))
		t.Logf("  envoy %s threads per change (with the 1 ms probe): %s", e.Version, after[j].since(before[j], n))
		t.Logf("  envoy %s: %s", e.Version, realEnvoyStats(t, p.envs[j].admin, "extension_config_discovery.http_filter.s3cors.",
			"config_reload", "config_fail", "update_success", "update_rejected", "control_plane.connected_state"))
	}
}

// TestControlPlanePropagationRealEnvoy: every acknowledged PutBucketCors reaches both Envoys
// (the oldest and newest pinned releases), each change in turn and a burst of changes made
// without waiting (none lost when pushes coalesce). It logs the time from each 200 to both
// Envoys enforcing and where it goes. `make soak` (S3CORS_SOAK=long) makes 300 changes: the
// distribution BENCHMARKS.md reports.
func TestControlPlanePropagationRealEnvoy(t *testing.T) {
	changes, buckets := 20, 20
	if os.Getenv("S3CORS_SOAK") == "long" {
		changes = 300
	}
	p := startPropagation(t, propagationSeed(buckets))
	// Both Envoys have the first configuration before anything is timed.
	waitFor(t, p.hc, p.addrs, "p0", "https://start.example", false, "CORS is not enabled for this bucket.")
	p.run(t, changes, "GET", func(i int) string { return fmt.Sprintf("p%d", i%buckets) })

	// A burst: one change to every bucket, none waited for, then each bucket's last rules on
	// both Envoys.
	for i := range buckets {
		p.put(t, fmt.Sprintf("p%d", i), fmt.Sprintf("https://burst%d.example", i), "GET")
	}
	for i := range buckets {
		waitFor(t, p.hc, p.addrs, fmt.Sprintf("p%d", i), fmt.Sprintf("https://burst%d.example", i), true, "")
	}
	if n := p.plane.metric(t, "s3cors_controlplane_xds_nacks_total"); n != 0 {
		t.Fatalf("Envoys refused %v configurations", n)
	}
}

// TestControlPlaneImageRealEnvoy: with 10,000 buckets (testenv.StressConfig, 4.6 MB of JSON)
// the control plane pushes the compiled policy image, both Envoys load it, and each change is
// enforced on both. It logs the push cost: the control plane's CPU time and the time until
// both Envoys enforce.
func TestControlPlaneImageRealEnvoy(t *testing.T) {
	const buckets = 10000
	p := startPropagation(t, testenv.StressConfig(buckets))
	// Both Envoys have the configuration (any origin may GET).
	waitFor(t, p.hc, p.addrs, "b7", "https://a7.example", true, "")
	if rec := p.plane.logRecords(t, "filter configuration pushed"); len(rec) != 1 || rec[0]["image"] != true {
		t.Fatalf("the first push of %d buckets is not an image: %v", buckets, rec)
	}
	changes := 5
	if os.Getenv("S3CORS_SOAK") == "long" {
		changes = 30
	}
	p.run(t, changes, "PUT", func(i int) string { return fmt.Sprintf("b%d", 7+3*i) })
	if n := p.plane.metric(t, "s3cors_controlplane_xds_nacks_total"); n != 0 {
		t.Fatalf("Envoys refused %v configurations", n)
	}
}

// realEnvoyStats returns the named counters and gauges under prefix, as "name: value" text.
func realEnvoyStats(t testing.TB, admin, prefix string, names ...string) string {
	t.Helper()
	_, body := httpGet(t, "http://"+admin+"/stats?filter="+url.QueryEscape("^"+regexp.QuoteMeta(prefix)))
	var out []string
	for _, line := range strings.Split(string(body), "\n") {
		if name, _, ok := strings.Cut(strings.TrimPrefix(line, prefix), ":"); ok && slices.Contains(names, name) {
			out = append(out, strings.TrimPrefix(line, prefix))
		}
	}
	return strings.Join(out, ", ")
}
