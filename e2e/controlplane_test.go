package e2e_test

// The control plane with real Envoy: two Envoys (the oldest and newest pinned releases) get
// the wasm filter's configuration from one `s3cors controlplane` by ECDS; aws-sdk-go-v2 changes
// bucket CORS through an Envoy (its ?cors route leads to the control plane), and the
// preflights on both Envoys follow.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	httpwasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/s3cors/s3cors/internal/controlplane"
	"github.com/s3cors/s3cors/internal/s3mem"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

const (
	cpKey    = "AKIACONTROLPLANEE2E1"
	cpSecret = "e2e/secret/wJalrXUtnFEMI/K7MDENGbPxRfiCY"
	cpSeed   = `{"buckets": {"website": null, "photos": null}, "unlistedBuckets": "not-found"}`
)

// cpBootstrap is envoy/controlplane.yaml (`s3cors manifest --target envoy-controlplane`) as
// generated, routes, ECDS filter and default configuration included, for this test: node id
// node, the listener and admin on ephemeral loopback ports, the store at store, the control
// plane's S3 API at api and its ECDS at xds, and the module built from this tree.
func cpBootstrap(t *testing.T, node, store, api, xds string) []byte {
	t.Helper()
	b := realEnvoyManifest(t, "controlplane.yaml")
	b.Node = &corev3.Node{Id: node, Cluster: "s3cors-e2e"}
	sr := b.GetStaticResources()
	l := sr.GetListeners()[0]
	l.Address = realEnvoyAddress("127.0.0.1", 0)
	hcm := realEnvoyHCM(t, l)
	cd := hcm.GetHttpFilters()[0].GetConfigDiscovery()
	var w httpwasmv3.Wasm
	if err := cd.GetDefaultConfig().UnmarshalTo(&w); err != nil {
		t.Fatalf("envoy/controlplane.yaml: the default config: %v", err)
	}
	w.GetConfig().GetVmConfig().GetCode().GetLocal().Specifier = &corev3.DataSource_Filename{Filename: testenv.Module(t)}
	cd.DefaultConfig = realEnvoyAny(t, &w)
	l.FilterChains[0].Filters[0].ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: realEnvoyAny(t, hcm)}
	for _, c := range sr.GetClusters() {
		switch c.GetName() {
		case "s3":
			realEnvoySetEndpoint(t, c, store)
		case "s3cors_controlplane":
			realEnvoySetEndpoint(t, c, xds)
		case "s3cors_controlplane_api":
			realEnvoySetEndpoint(t, c, api)
		default:
			t.Fatalf("envoy/controlplane.yaml: unexpected cluster %q", c.GetName())
		}
	}
	b.Admin.Address = realEnvoyAddress("127.0.0.1", 0)
	if err := b.ValidateAll(); err != nil {
		t.Fatal(err)
	}
	out, err := protojson.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// runningPlane is a control plane started by startPlane.
type runningPlane struct {
	cp       *controlplane.ControlPlane
	api, xds string
}

// startPlane runs controlplane.Run with seed, its state in store (re-read every poll when
// positive), the API on api and ECDS on xds ("127.0.0.1:0" for any port), until the test ends.
func startPlane(t *testing.T, seed []byte, store controlplane.Store, poll time.Duration, api, xds string) *runningPlane {
	t.Helper()
	creds, err := controlplane.ParseCredentials([]byte(`{"keys": [{"accessKeyId": "` + cpKey + `", "secretAccessKey": "` + cpSecret + `", "buckets": ["*"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	al, err := net.Listen("tcp", api)
	if err != nil {
		t.Fatal(err)
	}
	xl, err := net.Listen("tcp", xds)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *controlplane.ControlPlane, 1)
	done := make(chan error, 1)
	go func() {
		done <- controlplane.Run(ctx, controlplane.RunOptions{
			Options:     controlplane.Options{Seed: seed, Store: store, Keys: creds},
			Poll:        poll,
			Plugin:      controlplane.Plugin{Module: testenv.Module(t)},
			Listener:    al,
			XDSListener: xl,
			Ready:       func(cp *controlplane.ControlPlane) { ready <- cp },
		})
	}()
	rp := &runningPlane{api: al.Addr().String(), xds: xl.Addr().String()}
	select {
	case rp.cp = <-ready:
	case err := <-done:
		t.Fatalf("control plane: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("control plane: %v", err)
		}
	})
	return rp
}

// preflight sends a CORS preflight for bucket from origin and returns the status and body.
func cpPreflight(t *testing.T, c *http.Client, envoy, bucket, origin string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("OPTIONS", "http://"+envoy+"/"+bucket+"/index.html", nil)
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", "GET")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitAllowed polls each Envoy until a preflight from origin is allowed (or, when allowed is
// false, refused with want in the body) and returns when the last one does.
func waitFor(t *testing.T, c *http.Client, envoys []string, bucket, origin string, allowed bool, want string) time.Time {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, e := range envoys {
		for {
			status, body := cpPreflight(t, c, e, bucket, origin)
			if allowed && status == 200 || !allowed && status == 403 && strings.Contains(body, want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("envoy %s: preflight from %s to %s: %d %s after 30s", e, origin, bucket, status, body)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	return time.Now()
}

func cpClient(endpoint, secret string) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint:     aws.String("http://" + endpoint),
		UsePathStyle:     true,
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider(cpKey, secret, ""),
		RetryMaxAttempts: 1,
	})
}

func corsFor(origin string) *types.CORSConfiguration {
	return &types.CORSConfiguration{CORSRules: []types.CORSRule{{AllowedOrigins: []string{origin}, AllowedMethods: []string{"GET"}}}}
}

// TestControlPlaneRealEnvoy: PutBucketCors through one Envoy reaches the preflights of both;
// DeleteBucketCors gives "CORS is not enabled"; refused requests change nothing. It logs the
// propagation time (200 to both Envoys enforcing) over 100 changes. A restart is
// TestControlPlaneKillRealEnvoy's.
func TestControlPlaneRealEnvoy(t *testing.T) {
	all := testenv.Envoys(t)
	envoys := []testenv.Envoy{all[0], all[len(all)-1]}
	if len(all) == 1 {
		envoys[1] = all[0]
	}
	store := startRealEnvoyStore(t, nil)
	plane := startPlane(t, []byte(cpSeed), &controlplane.FileStore{Path: filepath.Join(t.TempDir(), "state.json")}, 0, "127.0.0.1:0", "127.0.0.1:0")
	var addrs []string
	for i, e := range envoys {
		env := startRealEnvoy(t, e.Path, cpBootstrap(t, fmt.Sprintf("envoy-%d-%s", i, e.Version), store.addr, plane.api, plane.xds))
		addrs = append(addrs, env.listeners["s3"])
		t.Logf("envoy %s at %s", e.Version, env.listeners["s3"])
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	const notEnabled = "CORS is not enabled for this bucket."
	waitFor(t, hc, addrs, "website", "https://app.example", false, notEnabled)

	ctx := context.Background()
	sdk := cpClient(addrs[0], cpSecret) // through Envoy's ?cors route
	if _, err := sdk.PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: aws.String("website"), CORSConfiguration: corsFor("https://app.example")}); err != nil {
		t.Fatalf("PutBucketCors through envoy: %v", err)
	}
	waitFor(t, hc, addrs, "website", "https://app.example", true, "")

	// Refused requests change nothing and are counted.
	bad := cpClient(addrs[1], "wrong-secret")
	_, err := bad.PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: aws.String("website"), CORSConfiguration: corsFor("https://evil.example")})
	if code := smithyCode(err); code != "SignatureDoesNotMatch" {
		t.Fatalf("wrongly signed PutBucketCors: %v", err)
	}
	unsigned, _ := http.NewRequest("DELETE", "http://"+addrs[1]+"/website?cors", nil)
	if resp, err := hc.Do(unsigned); err != nil || resp.StatusCode != 403 {
		t.Fatalf("unsigned DeleteBucketCors: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if n := plane.cp.Metrics().Rejected(""); n != 2 {
		t.Fatalf("refused requests counted: %v, want 2", n)
	}
	for _, e := range addrs {
		if status, _ := cpPreflight(t, hc, e, "website", "https://app.example"); status != 200 {
			t.Fatalf("a refused request changed the rules on %s: %d", e, status)
		}
	}

	// Propagation: 100 changes, each timed from the 200 to both Envoys allowing the new origin.
	var lat []time.Duration
	for i := range 100 {
		origin := fmt.Sprintf("https://o%d.example", i)
		if _, err := sdk.PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: aws.String("photos"), CORSConfiguration: corsFor(origin)}); err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
		start := time.Now()
		lat = append(lat, waitFor(t, hc, addrs, "photos", origin, true, "").Sub(start))
	}
	slices.Sort(lat)
	t.Logf("propagation over %d changes, 200 to both Envoys enforcing: p50 %v, p90 %v, p99 %v, max %v",
		len(lat), lat[len(lat)/2], lat[len(lat)*9/10], lat[len(lat)*99/100], lat[len(lat)-1])

	// Once with the AWS CLI (awscli from PyPI), through the other Envoy; a subtest, so that
	// outside CI a registry out of reach skips only this step.
	t.Run("awscli", func(t *testing.T) {
		py := testenv.Python(t, []string{"boto3", "awscli"}, []string{"boto3", "awscli"})
		cli := exec.Command(filepath.Join(filepath.Dir(py), "aws"), "s3api", "put-bucket-cors", "--endpoint-url", "http://"+addrs[1], "--bucket", "website",
			"--cors-configuration", `{"CORSRules": [{"AllowedOrigins": ["https://cli.example"], "AllowedMethods": ["GET"]}]}`)
		cli.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+cpKey, "AWS_SECRET_ACCESS_KEY="+cpSecret, "AWS_DEFAULT_REGION=us-east-1")
		if out, err := cli.CombinedOutput(); err != nil {
			t.Fatalf("aws s3api put-bucket-cors: %v\n%s", err, out)
		}
		waitFor(t, hc, addrs, "website", "https://cli.example", true, "")
	})

	if _, err := sdk.DeleteBucketCors(ctx, &s3.DeleteBucketCorsInput{Bucket: aws.String("website")}); err != nil {
		t.Fatalf("DeleteBucketCors: %v", err)
	}
	waitFor(t, hc, addrs, "website", "https://app.example", false, notEnabled)

}

func smithyCode(err error) string {
	var ae smithy.APIError
	if err != nil && errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return fmt.Sprint(err)
}

// TestControlPlaneReplicasRealEnvoy: two replicas share their state as an object in the
// embedded store (conditional writes); an Envoy connected to one enforces a change made
// through the other.
func TestControlPlaneReplicasRealEnvoy(t *testing.T) {
	all := testenv.Envoys(t)
	e := all[len(all)-1]
	mem := s3mem.New(s3mem.Options{Buckets: []string{"s3cors-state"}, PathStyle: true})
	storeSrv := httptest.NewServer(mem)
	t.Cleanup(storeSrv.Close)
	shared := func() controlplane.Store {
		return &controlplane.ObjectStore{
			Client: s3.New(s3.Options{BaseEndpoint: aws.String(storeSrv.URL), UsePathStyle: true, Region: "us-east-1",
				Credentials: credentials.NewStaticCredentialsProvider("store", "store-secret", ""), RetryMaxAttempts: 1}),
			Bucket: "s3cors-state", Key: "controlplane/state.json",
		}
	}
	a := startPlane(t, []byte(cpSeed), shared(), 100*time.Millisecond, "127.0.0.1:0", "127.0.0.1:0")
	b := startPlane(t, []byte(cpSeed), shared(), 100*time.Millisecond, "127.0.0.1:0", "127.0.0.1:0")
	env := startRealEnvoy(t, e.Path, cpBootstrap(t, "envoy-replicas", startRealEnvoyStore(t, nil).addr, a.api, a.xds))
	addrs := []string{env.listeners["s3"]}
	hc := &http.Client{Timeout: 10 * time.Second}
	ctx := context.Background()
	// Through replica b, which no Envoy is connected to.
	if _, err := cpClient(b.api, cpSecret).PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: aws.String("website"), CORSConfiguration: corsFor("https://via-b.example")}); err != nil {
		t.Fatalf("PutBucketCors on replica b: %v", err)
	}
	waitFor(t, hc, addrs, "website", "https://via-b.example", true, "")
	// And one through a, on the state b wrote: both changes are kept.
	if _, err := cpClient(a.api, cpSecret).PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: aws.String("photos"), CORSConfiguration: corsFor("https://via-a.example")}); err != nil {
		t.Fatalf("PutBucketCors on replica a: %v", err)
	}
	waitFor(t, hc, addrs, "photos", "https://via-a.example", true, "")
	if status, _ := cpPreflight(t, hc, addrs[0], "website", "https://via-b.example"); status != 200 {
		t.Fatalf("replica a's change lost replica b's: %d", status)
	}
}
