// Command benchpeer is the other side of the real-Envoy benchmark (e2e/envoybench_test.go),
// run as its own process so that its CPU time is never Envoy's nor the load generator's:
//
//	benchpeer upstream    a fixed-response HTTP/1.1 server: 200, text/plain, a 64-byte body
//	benchpeer nopextproc  an ext_proc server that does nothing: CONTINUE to every message
//
// Each listens on 127.0.0.1 on a port of its choosing, prints "listening <addr>" on standard
// output, and serves until SIGINT or SIGTERM.
//
// Where it sits: test support, built and started only by the e2e benchmarks; it imports
// gRPC and go-control-plane, nothing of this repository.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
)

// UpstreamBody is what the upstream answers every request with.
const UpstreamBody = "benchpeer upstream: a fixed body of 64 bytes, the same always!!\n"

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: benchpeer upstream|nopextproc")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, mode string, stdout io.Writer) error {
	if mode != "upstream" && mode != "nopextproc" {
		return fmt.Errorf("benchpeer: mode %q: want upstream or nopextproc", mode)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("benchpeer: %w", err)
	}
	if _, err := fmt.Fprintf(stdout, "listening %s\n", lis.Addr()); err != nil {
		return fmt.Errorf("benchpeer: %w", err)
	}
	switch mode {
	case "upstream":
		srv := &http.Server{Handler: http.HandlerFunc(upstream), ReadHeaderTimeout: 10 * time.Second}
		go func() { <-ctx.Done(); _ = srv.Close() }()
		if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("benchpeer: upstream: %w", err)
		}
		return nil
	default: // nopextproc
		// Envoy's ext_proc cluster pings every 30 s; gRPC's default policy answers pings more
		// frequent than 5 minutes with GOAWAY (the s3cors server allows them the same way).
		gs := grpc.NewServer(grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}))
		extprocv3.RegisterExternalProcessorServer(gs, nopExtProc{})
		hs := health.NewServer()
		hs.SetServingStatus("envoy.service.ext_proc.v3.ExternalProcessor", healthpb.HealthCheckResponse_SERVING)
		healthpb.RegisterHealthServer(gs, hs)
		go func() { <-ctx.Done(); gs.Stop() }()
		return gs.Serve(lis)
	}
}

func upstream(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	h := w.Header()
	h["Content-Type"] = []string{"text/plain"}
	h["Content-Length"] = []string{strconv.Itoa(len(UpstreamBody))}
	_, _ = io.WriteString(w, UpstreamBody)
}

// nopExtProc answers CONTINUE to request and response headers (and, should Envoy send them,
// bodies and trailers), with no mutation and no mode override: the least any ext_proc server
// can do, written as a Go server usually is (gRPC's own protobuf codec).
type nopExtProc struct {
	extprocv3.UnimplementedExternalProcessorServer
}

func (nopExtProc) Process(stream extprocv3.ExternalProcessor_ProcessServer) error {
	for {
		req, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		resp := &extprocv3.ProcessingResponse{}
		switch req.GetRequest().(type) {
		case *extprocv3.ProcessingRequest_RequestHeaders:
			resp.Response = &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}}
		case *extprocv3.ProcessingRequest_ResponseHeaders:
			resp.Response = &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}}
		case *extprocv3.ProcessingRequest_RequestBody:
			resp.Response = &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{}}
		case *extprocv3.ProcessingRequest_ResponseBody:
			resp.Response = &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{}}
		case *extprocv3.ProcessingRequest_RequestTrailers:
			resp.Response = &extprocv3.ProcessingResponse_RequestTrailers{RequestTrailers: &extprocv3.TrailersResponse{}}
		case *extprocv3.ProcessingRequest_ResponseTrailers:
			resp.Response = &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extprocv3.TrailersResponse{}}
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}
