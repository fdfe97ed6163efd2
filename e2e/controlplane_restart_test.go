package e2e_test

// The built control plane killed with SIGKILL (a crash, an OOM kill) and started again:
// Envoys keep the last rules, reconnect, and no acknowledged change is lost; with two
// replicas on the store option, a change made on one is served through the other, across a
// kill of either.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3cors/s3cors/internal/s3mem"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// envoyConnected waits until Envoy's ECDS stream to the control plane is (or is not) up.
func envoyConnected(t *testing.T, env *realEnvoy, want bool) {
	t.Helper()
	const stat = "control_plane.connected_state"
	wantText := fmt.Sprintf("%s: %d", stat, map[bool]int{false: 0, true: 1}[want])
	testenv.Eventually(t, fmt.Sprintf("envoy %s: %q", env.admin, wantText), func() bool {
		return realEnvoyStats(t, env.admin, "extension_config_discovery.http_filter.s3cors.", stat) == wantText
	})
}

// TestControlPlaneKillRealEnvoy: a writer makes changes one after another; the control plane
// is killed with SIGKILL right after one is acknowledged. The Envoys keep serving the rules
// they had, see the stream drop, reconnect to the restarted process, and then enforce every
// acknowledged change; the restarted process returns each by GetBucketCors.
func TestControlPlaneKillRealEnvoy(t *testing.T) {
	const buckets = 30
	all := testenv.Envoys(t)
	envoys := []testenv.Envoy{all[0], all[len(all)-1]}
	state := filepath.Join(t.TempDir(), "state.json")
	plane := launchPlane(t, propagationSeed(buckets), []string{"--state", state}, nil)
	store := startRealEnvoyStore(t, nil)
	var addrs []string
	var envs []*realEnvoy
	for i, e := range envoys {
		env := startRealEnvoy(t, e.Path, cpBootstrap(t, fmt.Sprintf("envoy-%d-%s", i, e.Version), store.addr, plane.api, plane.xds))
		envs = append(envs, env)
		addrs = append(addrs, env.listeners["s3"])
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	ctx := context.Background()
	sdk := cpClient(plane.api, cpSecret)
	put := func(bucket, origin string) error {
		_, err := sdk.PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: aws.String(bucket), CORSConfiguration: corsFor(origin)})
		return err
	}
	if err := put("p0", "https://before.example"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, hc, addrs, "p0", "https://before.example", true, "")

	// The writer: p1, p2, ... one change each, until a request fails (the process is gone).
	type change struct{ bucket, origin string }
	acked := make(chan change, buckets)
	go func() {
		defer close(acked)
		for i := 1; i < buckets; i++ {
			c := change{fmt.Sprintf("p%d", i), fmt.Sprintf("https://k%d.example", i)}
			if err := put(c.bucket, c.origin); err != nil {
				return
			}
			acked <- c
		}
	}()
	var done []change
	for c := range acked {
		done = append(done, c)
		if len(done) == 10 {
			plane.kill(t) // right after the 200, with the writer's next request in flight
		}
	}
	if len(done) < 10 {
		t.Fatalf("only %d changes acknowledged before the kill", len(done))
	}
	t.Logf("%d changes acknowledged, then SIGKILL", len(done))

	// Envoys keep the rules they had while the control plane is away.
	for i, env := range envs {
		envoyConnected(t, env, false)
		if status, body := cpPreflight(t, hc, addrs[i], "p0", "https://before.example"); status != 200 {
			t.Fatalf("envoy %s lost the rules when the control plane died: %d %s", envoys[i].Version, status, body)
		}
	}

	plane.start(t)
	for _, env := range envs {
		envoyConnected(t, env, true)
	}
	for _, c := range done {
		got, err := sdk.GetBucketCors(ctx, &s3.GetBucketCorsInput{Bucket: aws.String(c.bucket)})
		if err != nil || len(got.CORSRules) != 1 || got.CORSRules[0].AllowedOrigins[0] != c.origin {
			t.Fatalf("acknowledged change to %s (%s) lost across SIGKILL: %+v %v", c.bucket, c.origin, got, err)
		}
		waitFor(t, hc, addrs, c.bucket, c.origin, true, "")
	}
	// The reconnected Envoys follow new changes, made through an Envoy's ?cors route to the
	// restarted process.
	if _, err := cpClient(addrs[0], cpSecret).PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: aws.String("p0"), CORSConfiguration: corsFor("https://after-restart.example")}); err != nil {
		t.Fatalf("PutBucketCors through envoy after the restart: %v", err)
	}
	waitFor(t, hc, addrs, "p0", "https://after-restart.example", true, "")
}

// TestControlPlaneReplicasKillRealEnvoy: two replicas (processes) keep their state as one
// object in a store with conditional writes (--state-bucket); Envoy a is connected to replica
// A, Envoy b to replica B. A change made through either is enforced by both Envoys; replica A
// killed with SIGKILL and restarted serves what B acknowledged meanwhile.
func TestControlPlaneReplicasKillRealEnvoy(t *testing.T) {
	all := testenv.Envoys(t)
	mem := s3mem.New(s3mem.Options{Buckets: []string{"s3cors-state"}, PathStyle: true})
	storeSrv := httptest.NewServer(mem)
	t.Cleanup(storeSrv.Close)
	args := []string{"--state-bucket", "s3cors-state", "--state-endpoint", storeSrv.URL, "--poll", "100ms"}
	env := []string{"AWS_ACCESS_KEY_ID=store", "AWS_SECRET_ACCESS_KEY=store-secret"}
	seed := []byte(cpSeed)
	a := launchPlane(t, seed, args, env)
	b := launchPlane(t, seed, args, env)
	backend := startRealEnvoyStore(t, nil)
	ea := startRealEnvoy(t, all[len(all)-1].Path, cpBootstrap(t, "envoy-on-a", backend.addr, a.api, a.xds))
	eb := startRealEnvoy(t, all[0].Path, cpBootstrap(t, "envoy-on-b", backend.addr, b.api, b.xds))
	addrs := []string{ea.listeners["s3"], eb.listeners["s3"]}
	hc := &http.Client{Timeout: 10 * time.Second}
	ctx := context.Background()
	put := func(p *planeProc, bucket, origin string) {
		t.Helper()
		if _, err := cpClient(p.api, cpSecret).PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: aws.String(bucket), CORSConfiguration: corsFor(origin)}); err != nil {
			t.Fatalf("PutBucketCors %s on %s: %v", bucket, p.api, err)
		}
	}
	put(b, "website", "https://via-b.example")
	waitFor(t, hc, addrs, "website", "https://via-b.example", true, "")
	put(a, "photos", "https://via-a.example")
	waitFor(t, hc, addrs, "photos", "https://via-a.example", true, "")

	a.kill(t)
	envoyConnected(t, ea, false)
	if status, _ := cpPreflight(t, hc, addrs[0], "photos", "https://via-a.example"); status != 200 {
		t.Fatalf("envoy on the killed replica lost its rules: %d", status)
	}
	put(b, "website", "https://via-b-while-a-down.example")
	waitFor(t, hc, addrs[1:], "website", "https://via-b-while-a-down.example", true, "")
	a.start(t)
	envoyConnected(t, ea, true)
	waitFor(t, hc, addrs, "website", "https://via-b-while-a-down.example", true, "")
	if status, _ := cpPreflight(t, hc, addrs[0], "photos", "https://via-a.example"); status != 200 {
		t.Fatalf("replica A's own acknowledged change lost across SIGKILL: %d", status)
	}
	if acks := a.metric(t, "s3cors_controlplane_xds_acks_total"); acks < 1 {
		t.Fatalf("the restarted replica saw no ACK from its Envoy: %v", acks)
	}
	if obj, ok := mem.Get("s3cors-state", "s3cors/controlplane-state.json"); !ok || !strings.Contains(string(obj.Body), "via-b-while-a-down") {
		t.Fatal("the shared state object lacks B's change")
	}
}
