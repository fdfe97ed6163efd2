package e2e_test

// envoy/controlplane.yaml in real Envoy, before and after the control plane answers: until
// its first answer the filter's default configuration grants no CORS (and strips the store's
// own), and the bucket ?cors route takes exactly a bucket's PUT, GET and DELETE ?cors to the
// control plane.

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/s3cors/s3cors/internal/controlplane"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// cpReserve returns a loopback address no one listens on now, for a server started later.
func cpReserve(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// cpFetchTimeout sets the ECDS initial_fetch_timeout of bootstrap (JSON) to d, so that a test
// sees the default configuration take over without waiting the manifest's 15s.
func cpFetchTimeout(t *testing.T, bootstrap []byte, d time.Duration) []byte {
	t.Helper()
	var b bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(bootstrap, &b); err != nil {
		t.Fatal(err)
	}
	l := b.GetStaticResources().GetListeners()[0]
	hcm := realEnvoyHCM(t, l)
	hcm.GetHttpFilters()[0].GetConfigDiscovery().GetConfigSource().InitialFetchTimeout = durationpb.New(d)
	l.FilterChains[0].Filters[0].ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: realEnvoyAny(t, hcm)}
	out, err := protojson.Marshal(&b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// cpStore is a store that answers every request 200 "store" with its own permissive CORS
// header (as MinIO reflects any origin) and records what reached it.
type cpStore struct {
	addr string
	mu   sync.Mutex
	seen []string // "METHOD request-target"
}

func startCPStore(t *testing.T) *cpStore {
	t.Helper()
	s := &cpStore{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.seen = append(s.seen, r.Method+" "+r.RequestURI)
		s.mu.Unlock()
		w.Header().Set("Access-Control-Allow-Origin", "*")
		_, _ = io.WriteString(w, "store")
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

// took reports whether the store received a request whose "METHOD target" has prefix p.
func (s *cpStore) took(p string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.seen {
		if strings.HasPrefix(r, p) {
			return true
		}
	}
	return false
}

// TestControlPlaneManifestRealEnvoy runs envoy/controlplane.yaml in each pinned Envoy, started
// while the control plane is down: past the initial fetch timeout the default configuration
// serves, refusing every preflight ("CORS is not enabled") and removing the store's own CORS
// headers, while S3 requests still reach the store. Then the control plane starts; Envoy
// connects by itself, and the AWS SDK manages bucket CORS through Envoy's ?cors route: Put,
// Get and Delete are answered by the control plane (never the store), an object's ?cors
// request and a preflight to a bucket's ?cors are not taken by the route.
func TestControlPlaneManifestRealEnvoy(t *testing.T) {
	for _, e := range testenv.Envoys(t) {
		t.Run(e.Version, func(t *testing.T) {
			store := startCPStore(t)
			api, xds := cpReserve(t), cpReserve(t)
			boot := cpFetchTimeout(t, cpBootstrap(t, "envoy-manifest-"+e.Version, store.addr, api, xds), time.Second)
			env := startRealEnvoy(t, e.Path, boot)
			addr := env.listeners["s3"]
			hc := &http.Client{Timeout: 10 * time.Second}

			// No control plane yet: the default configuration.
			const notEnabled = "CORS is not enabled for this bucket."
			if status, body := cpPreflight(t, hc, addr, "website", "https://app.example"); status != 403 || !strings.Contains(body, notEnabled) {
				t.Fatalf("preflight before the control plane answered: %d %s, want 403 %q", status, body, notEnabled)
			}
			if store.took("OPTIONS") {
				t.Fatal("a preflight reached the store")
			}
			req, _ := http.NewRequest("GET", "http://"+addr+"/website/index.html", nil)
			req.Header.Set("Origin", "https://app.example")
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "store" || resp.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Fatalf("GET before the control plane answered: %d %q, Access-Control-Allow-Origin %q; want the store's 200 without its CORS header",
					resp.StatusCode, body, resp.Header.Get("Access-Control-Allow-Origin"))
			}

			// The control plane comes up at the address the bootstrap names.
			startPlane(t, []byte(cpSeed), &controlplane.FileStore{Path: filepath.Join(t.TempDir(), "state.json")}, 0, api, xds)
			up := time.Now()
			ctx := context.Background()
			sdk := cpClient(addr, cpSecret)
			deadline := time.Now().Add(30 * time.Second)
			for {
				_, err := sdk.PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: aws.String("website"), CORSConfiguration: corsFor("https://app.example")})
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("PutBucketCors through envoy: %v", err)
				}
				time.Sleep(50 * time.Millisecond) // the API cluster's connection may still be failing over
			}
			put := time.Now()
			t.Logf("PutBucketCors acknowledged %v after the control plane started", put.Sub(up).Round(time.Millisecond))
			// Envoy reconnects to the control plane with its own backoff (jittered, up to 30s).
			t.Logf("enforced %v after the acknowledgement", waitFor(t, hc, []string{addr}, "website", "https://app.example", true, "").Sub(put).Round(time.Millisecond))
			got, err := sdk.GetBucketCors(ctx, &s3.GetBucketCorsInput{Bucket: aws.String("website")})
			if err != nil || len(got.CORSRules) != 1 || got.CORSRules[0].AllowedOrigins[0] != "https://app.example" {
				t.Fatalf("GetBucketCors through envoy: %+v %v", got, err)
			}

			// Only a bucket's PUT, GET and DELETE ?cors are the control plane's.
			for _, p := range []struct{ method, target string }{{"PUT", "/website/key?cors"}, {"POST", "/website?cors"}, {"HEAD", "/website?cors"}} {
				r, _ := http.NewRequest(p.method, "http://"+addr+p.target, nil)
				resp, err := hc.Do(r)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if !store.took(p.method + " " + p.target) {
					t.Errorf("%s %s did not reach the store", p.method, p.target)
				}
			}
			pre, _ := http.NewRequest("OPTIONS", "http://"+addr+"/website?cors", nil)
			pre.Header.Set("Origin", "https://app.example")
			pre.Header.Set("Access-Control-Request-Method", "PUT")
			if resp, err := hc.Do(pre); err != nil {
				t.Fatal(err)
			} else if resp.Body.Close(); resp.StatusCode != 403 {
				t.Errorf("a preflight for PUT /website?cors (the rule allows GET): %d, want the filter's 403", resp.StatusCode)
			}
			if store.took("PUT /website?cors") || store.took("GET /website?cors") || store.took("OPTIONS") {
				t.Errorf("a bucket ?cors request or a preflight reached the store: %q", store.seen)
			}

			if _, err := sdk.DeleteBucketCors(ctx, &s3.DeleteBucketCorsInput{Bucket: aws.String("website")}); err != nil {
				t.Fatalf("DeleteBucketCors through envoy: %v", err)
			}
			waitFor(t, hc, []string{addr}, "website", "https://app.example", false, notEnabled)
		})
	}
}
