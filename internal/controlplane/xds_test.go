package controlplane

import (
	"bytes"
	"context"
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
	"github.com/s3cors/s3cors/internal/testing/controlplanetest"
	"github.com/s3cors/s3cors/internal/testing/testenv"
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

// recv returns the next response and the plugin configuration it carries (JSON text).
func (c *ecdsClient) recv() (*discoveryv3.DiscoveryResponse, string) {
	c.t.Helper()
	resp, w := c.recvWasm()
	var sv wrapperspb.StringValue
	if err := w.GetConfig().GetConfiguration().UnmarshalTo(&sv); err != nil {
		c.t.Fatal(err)
	}
	return resp, sv.GetValue()
}

// recvWasm returns the next response and the wasm filter configuration it carries.
func (c *ecdsClient) recvWasm() (*discoveryv3.DiscoveryResponse, *httpwasmv3.Wasm) {
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
	return resp, &w
}

// ecdsServer serves x on a loopback gRPC server and returns a function opening ECDS streams.
func ecdsServer(t *testing.T, ctx context.Context, x *XDS) func() *ecdsClient {
	t.Helper()
	conn, err := grpc.NewClient(controlplanetest.Serve(t, x), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return func() *ecdsClient {
		sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
		t.Cleanup(scancel)
		s, err := extensionv3.NewExtensionConfigDiscoveryServiceClient(conn).StreamExtensionConfigs(sctx)
		if err != nil {
			t.Fatal(err)
		}
		return &ecdsClient{t: t, stream: s}
	}
}

// TestECDS: an Envoy gets the current document, then each change; an Envoy that reconnects
// with a stale version, or NACKs, gets the current document, never an older one.
func TestECDS(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := NewMetrics()
	x := NewXDS(ctx, Plugin{Module: "/m/s3cors.wasm"}, m, nil)
	open := ecdsServer(t, ctx, x)

	tp := newTestPlane(t, testSeed, nil)
	doc, v := tp.cp.Document()
	if err := x.Push(doc, nil, v); err != nil {
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
	if err := x.Push(doc2, nil, v2); err != nil {
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
	if err := x.Push(doc3, nil, v3); err != nil {
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
	// The one ACK was of a version pushed by this XDS: its delay is observed.
	if n := controlplanetest.Metric(t, m.Registry(), "s3cors_controlplane_xds_ack_seconds").GetHistogram().GetSampleCount(); n != 1 {
		t.Fatalf("ack delays observed: %d, want 1", n)
	}
}

// TestECDSImage: a document over ImageThreshold is pushed as its compiled policy image (a
// BytesValue the filter loads in place); one under it as JSON text.
func TestECDSImage(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	x := NewXDS(ctx, Plugin{}, nil, nil)
	open := ecdsServer(t, ctx, x)
	large := testenv.StressConfig(1000)
	if len(large) <= ImageThreshold {
		t.Fatalf("a %d-byte document is not over the threshold %d", len(large), ImageThreshold)
	}
	if err := x.Push(large, nil, 1); err != nil {
		t.Fatal(err)
	}
	c := open()
	c.send("", "")
	resp, w := c.recvWasm()
	var bv wrapperspb.BytesValue
	if err := w.GetConfig().GetConfiguration().UnmarshalTo(&bv); err != nil {
		t.Fatalf("a large document is not pushed as bytes: %v", err)
	}
	if _, err := evaluator.LoadAny(bv.GetValue()); err != nil || !evaluator.IsImage(bv.GetValue()) {
		t.Fatalf("the pushed bytes are not a policy image: %v", err)
	}
	cfg, err := evaluator.ParseConfig(large)
	if err != nil {
		t.Fatal(err)
	}
	if want, err := evaluator.CompileImage(cfg); err != nil || !bytes.Equal(bv.GetValue(), want) {
		t.Fatalf("the pushed image is not the document's (%v)", err)
	}
	c.send(resp.GetVersionInfo(), resp.GetNonce())
	small := testenv.StressConfig(2)
	if err := x.Push(small, nil, 2); err != nil {
		t.Fatal(err)
	}
	if _, got := c.recv(); got != string(small) {
		t.Fatalf("a small document is not pushed as its JSON: %q", got)
	}
}

// TestLargeConfigurationPushed: over ImageThreshold the control plane hands Push the merged
// configuration without parsing the document again; it compiles to the very image the
// document does, after a change and after a removal.
func TestLargeConfigurationPushed(t *testing.T) {
	seed := testenv.StressConfig(1000)
	creds, err := ParseCredentials([]byte(testCredentials))
	if err != nil {
		t.Fatal(err)
	}
	var doc []byte
	var cfg *evaluator.Config
	cp, err := New(Options{Seed: seed, Store: &memStore{}, Keys: creds,
		Push: func(d []byte, c *evaluator.Config, _ uint64) { doc, cfg = d, c }})
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		if len(doc) <= ImageThreshold {
			t.Fatalf("%s: a %d-byte document is not over the threshold", when, len(doc))
		}
		want, err := evaluator.ParseConfig(doc)
		if err != nil {
			t.Fatal(err)
		}
		a, err1 := evaluator.CompileImage(cfg)
		b, err2 := evaluator.CompileImage(want)
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			t.Fatalf("%s: the pushed configuration is not the document's (%v, %v)", when, err1, err2)
		}
	}
	check("seed")
	rules, err := evaluator.ParseBucketCORS([]byte(rulesXML))
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.Put("b5", rules); err != nil {
		t.Fatal(err)
	}
	check("after a change")
	if err := cp.Put("b6", nil); err != nil {
		t.Fatal(err)
	}
	check("after a removal")
}
