package e2e_test

import (
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/s3cors/s3cors/internal/testing/casetable"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// TestRealEnvoyExtProcFailClosed: envoy/extproc.yaml's filter fails closed as docs/deploy.md
// says, in each release: with the server unreachable a request gets 500, with a server that
// is healthy but never answers 504 after message_timeout. status_on_error ServiceUnavailable
// turns the first into 503 and leaves the timeout's 504. No request reaches the store, and
// failure_mode_allowed stays 0.
func TestRealEnvoyExtProcFailClosed(t *testing.T) {
	hanging := startHangingExtProc(t)
	unreachable := "127.0.0.1:" + strconv.Itoa(int(freePort(t)))
	listeners := []struct {
		server        string
		statusOnError bool
		want          int
	}{{unreachable, false, 500}, {hanging, false, 504}, {unreachable, true, 503}, {hanging, true, 504}}
	tables := make([]casetable.Table, len(listeners))
	servers := make([]string, len(listeners))
	for i, l := range listeners {
		tables[i] = casetable.Table{Name: "failclosed", Config: lifecycleConfig("https://app.example")}
		servers[i] = l.server
	}
	store := startRealEnvoyStore(t, tables)
	client := &http.Client{Timeout: 10 * time.Second}
	for _, e := range testenv.Envoys(t) {
		t.Run(e.Version, func(t *testing.T) {
			js := realEnvoyBootstrap(t, "extproc.yaml", tables, store.addr, "", servers)
			var b bootstrapv3.Bootstrap
			if err := protojson.Unmarshal(js, &b); err != nil {
				t.Fatal(err)
			}
			for i, l := range listeners {
				if l.statusOnError {
					b.StaticResources.Listeners[i] = withFirstHTTPFilter(t, b.StaticResources.Listeners[i], &extprocfilterv3.ExternalProcessor{},
						func(ep *extprocfilterv3.ExternalProcessor) {
							ep.StatusOnError = &typev3.HttpStatus{Code: typev3.StatusCode_ServiceUnavailable}
						})
				}
			}
			p := launchEnvoy(t, e.Path, marshalBootstrap(t, &b), 2)
			p.waitLive(t)
			addrs := p.listeners(t)
			for i, l := range listeners {
				for _, origin := range []string{"https://app.example", "https://evil.example"} {
					if st, err := preflight(client, addrs["s3-"+strconv.Itoa(i)], origin); err != nil || st != l.want {
						t.Errorf("listener %d (%+v), preflight from %s: %d %v, want %d", i, l, origin, st, err, l.want)
					}
				}
			}
			st := p.stats(t)
			for i := range listeners {
				prefix := "http.s3_" + strconv.Itoa(i) + ".ext_proc."
				if st[prefix+"failure_mode_allowed"] != 0 {
					t.Errorf("%sfailure_mode_allowed = %d", prefix, st[prefix+"failure_mode_allowed"])
				}
				t.Logf("%sstreams_started %d, streams_failed %d, message_timeouts %d", prefix,
					st[prefix+"streams_started"], st[prefix+"streams_failed"], st[prefix+"message_timeouts"])
			}
			for _, name := range []string{"http.s3_1.ext_proc.message_timeouts", "http.s3_3.ext_proc.message_timeouts",
				"http.s3_0.ext_proc.streams_failed", "http.s3_2.ext_proc.streams_failed"} {
				if st[name] != 2 {
					t.Errorf("%s = %d, want 2", name, st[name])
				}
			}
			store.mu.Lock()
			reached := len(store.hits)
			store.mu.Unlock()
			if reached != 0 {
				t.Errorf("the store saw %d requests, want none", reached)
			}
		})
	}
}

// hangingExtProc accepts every stream and never answers.
type hangingExtProc struct {
	extprocv3.UnimplementedExternalProcessorServer
}

func (hangingExtProc) Process(s extprocv3.ExternalProcessor_ProcessServer) error {
	<-s.Context().Done()
	return nil
}

// startHangingExtProc serves hangingExtProc, healthy to Envoy's gRPC health check, and
// returns its address.
func startHangingExtProc(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(srv, hangingExtProc{})
	hs := health.NewServer()
	hs.SetServingStatus("envoy.service.ext_proc.v3.ExternalProcessor", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}
