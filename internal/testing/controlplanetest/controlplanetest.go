// Package controlplanetest serves a control plane's ECDS (internal/controlplane.XDS) on
// loopback for tests, and reads its metrics. It does not import internal/controlplane, so
// that package's own tests use it too.
package controlplanetest

import (
	"net"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
)

// Registrar adds a gRPC service to a server: controlplane.XDS.
type Registrar interface{ Register(*grpc.Server) }

// Serve serves r on a loopback gRPC server until the test ends and returns its address.
func Serve(t testing.TB, r Registrar) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	r.Register(gs)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return lis.Addr().String()
}

// Metric returns the metric without labels named name in g (a controlplane.Metrics'
// Registry), failing the test when there is none.
func Metric(t testing.TB, g prometheus.Gatherer, name string) *dto.Metric {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0]
		}
	}
	t.Fatalf("controlplanetest: no metric %q", name)
	return nil
}
