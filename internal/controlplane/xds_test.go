package controlplane

import (
	"context"
	"net"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	httpwasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	extensionv3 "github.com/envoyproxy/go-control-plane/envoy/service/extension/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus/testutil"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/s3cors/s3cors/evaluator"
)

// ecdsClient is an Envoy's ECDS stream, reduced to what the test needs.
type ecdsClient struct {
	t      *testing.T
	stream extensionv3.ExtensionConfigDiscoveryService_StreamExtensionConfigsClient
}

func (c *ecdsClient) send(version, nonce string) {
	c.t.Helper()
	err := c.stream.Send(&discoveryv3.DiscoveryRequest{
		Node: &corev3.Node{Id: "envoy-test"}, TypeUrl: resourcev3.ExtensionConfigType,
		ResourceNames: []string{"s3cors"}, VersionInfo: version, ResponseNonce: nonce,
	})
	if err != nil {
		c.t.Fatal(err)
	}
}

// recv returns the next response and the plugin configuration it carries.
func (c *ecdsClient) recv() (*discoveryv3.DiscoveryResponse, string) {
	c.t.Helper()
	resp, err := c.stream.Recv()
	if err != nil {
		c.t.Fatal(err)
	}
	if len(resp.GetResources()) != 1 {
		c.t.Fatalf("%d resources, want 1", len(resp.GetResources()))
	}
	var tc corev3.TypedExtensionConfig
	if err := resp.GetResources()[0].UnmarshalTo(&tc); err != nil {
		c.t.Fatal(err)
	}
	var w httpwasmv3.Wasm
	if err := tc.GetTypedConfig().UnmarshalTo(&w); err != nil {
		c.t.Fatal(err)
	}
	if err := w.ValidateAll(); err != nil {
		c.t.Fatal(err)
	}
	var sv wrapperspb.StringValue
	if err := w.GetConfig().GetConfiguration().UnmarshalTo(&sv); err != nil {
		c.t.Fatal(err)
	}
	return resp, sv.GetValue()
}

// TestECDS: an Envoy gets the current document, then each change; an Envoy that reconnects
// with a stale version, or NACKs, gets the current document, never an older one.
func TestECDS(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := NewMetrics()
	x := NewXDS(ctx, Plugin{Module: "/m/s3cors.wasm"}, m, nil)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	x.Register(gs)
	go func() { _ = gs.Serve(lis) }()
	defer gs.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	open := func() *ecdsClient {
		sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
		t.Cleanup(scancel)
		s, err := extensionv3.NewExtensionConfigDiscoveryServiceClient(conn).StreamExtensionConfigs(sctx)
		if err != nil {
			t.Fatal(err)
		}
		return &ecdsClient{t: t, stream: s}
	}

	tp := newTestPlane(t, testSeed, nil)
	doc, v := tp.cp.Document()
	if err := x.Push(doc, v); err != nil {
		t.Fatal(err)
	}
	a := open()
	a.send("", "")
	resp, got := a.recv()
	if got != string(doc) {
		t.Fatalf("first response carries %q", got)
	}
	if _, err := evaluator.Load([]byte(got)); err != nil {
		t.Fatalf("the served document does not load: %v", err)
	}
	a.send(resp.GetVersionInfo(), resp.GetNonce()) // ACK
	stale := resp.GetVersionInfo()

	if err := putRules(t, tp, "website", "https://new.example"); err != nil {
		t.Fatal(err)
	}
	doc2, v2 := tp.cp.Document()
	if err := x.Push(doc2, v2); err != nil {
		t.Fatal(err)
	}
	resp2, got2 := a.recv()
	if got2 != string(doc2) {
		t.Fatal("the change was not pushed to the connected Envoy")
	}
	// A NACK keeps the stream; the next change still arrives.
	if err := a.stream.Send(&discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: "envoy-test"}, TypeUrl: resourcev3.ExtensionConfigType,
		ResourceNames: []string{"s3cors"}, VersionInfo: stale, ResponseNonce: resp2.GetNonce(),
		ErrorDetail: &statuspb.Status{Code: 3, Message: "refused"}}); err != nil {
		t.Fatal(err)
	}
	if err := putRules(t, tp, "website", "https://after-nack.example"); err != nil {
		t.Fatal(err)
	}
	doc3, v3 := tp.cp.Document()
	if err := x.Push(doc3, v3); err != nil {
		t.Fatal(err)
	}
	if _, got := a.recv(); got != string(doc3) {
		t.Fatal("after a NACK the next change was not pushed")
	}

	b := open()
	b.send(stale, "")
	if _, got := b.recv(); got != string(doc3) {
		t.Fatal("an Envoy reconnecting with a stale version did not get the current document")
	}
	if s, acks, nacks := testutil.ToFloat64(m.streams), testutil.ToFloat64(m.acks), testutil.ToFloat64(m.nacks); s != 2 || acks != 1 || nacks != 1 {
		t.Fatalf("streams %v, acks %v, nacks %v; want 2, 1, 1", s, acks, nacks)
	}
}
