package controlplane

import (
	"context"
	"log/slog"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	httpwasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	extensionv3 "github.com/envoyproxy/go-control-plane/envoy/service/extension/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Plugin describes the wasm filter configuration the control plane serves over ECDS.
type Plugin struct {
	// Name is the ECDS resource name: the name of the HTTP filter whose config_discovery
	// asks for it (default "s3cors").
	Name string
	// Module is the file Envoy loads the module from (default /etc/envoy/s3cors.wasm).
	Module string
	// VMID shares one VM between updates: with the same vm_id and code, Envoy keeps the
	// compiled module and only configures a new plugin (default "s3cors").
	VMID string
}

func (p *Plugin) defaults() {
	if p.Name == "" {
		p.Name = "s3cors"
	}
	if p.Module == "" {
		p.Module = "/etc/envoy/s3cors.wasm"
	}
	if p.VMID == "" {
		p.VMID = "s3cors"
	}
}

// XDS serves the wasm filter's configuration to every Envoy that asks by ECDS, whatever its
// node id: one resource, the Plugin with the latest document.
type XDS struct {
	plugin Plugin
	cache  *cache.LinearCache
	server serverv3.Server
}

// NewXDS returns an ECDS server with no configuration yet: Envoys that ask wait (their
// listener warms) until the first Push. Streams, ACKs and NACKs are counted in m and NACKs
// logged to log (either may be nil).
func NewXDS(ctx context.Context, p Plugin, m *Metrics, log *slog.Logger) *XDS {
	p.defaults()
	if m == nil {
		m = NewMetrics()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := cache.NewLinearCache(resourcev3.ExtensionConfigType)
	cb := serverv3.CallbackFuncs{
		StreamOpenFunc:   func(context.Context, int64, string) error { m.streams.Inc(); return nil },
		StreamClosedFunc: func(int64, *corev3.Node) { m.streams.Dec() },
		StreamRequestFunc: func(_ int64, req *discoveryv3.DiscoveryRequest) error {
			switch {
			case req.GetErrorDetail() != nil:
				m.nacks.Inc()
				log.Error("an Envoy refused the filter configuration", "node", req.GetNode().GetId(), "version", req.GetVersionInfo(), "reason", req.GetErrorDetail().GetMessage())
			case req.GetResponseNonce() != "":
				m.acks.Inc()
			}
			return nil
		},
	}
	return &XDS{plugin: p, cache: c, server: serverv3.NewServer(ctx, c, cb)}
}

// Register adds the ECDS service to a gRPC server.
func (x *XDS) Register(g *grpc.Server) {
	extensionv3.RegisterExtensionConfigDiscoveryServiceServer(g, x.server)
}

// Push makes doc, an s3cors configuration, the filter configuration every Envoy gets. The
// version is the control plane's; the cache numbers its own.
func (x *XDS) Push(doc []byte, _ uint64) error {
	cfg, err := x.Resource(doc)
	if err != nil {
		return err
	}
	return x.cache.UpdateResource(x.plugin.Name, cfg)
}

// Resource is the ECDS resource for doc: the wasm filter, as envoy/wasm.yaml configures it,
// with doc as its plugin configuration.
func (x *XDS) Resource(doc []byte) (*corev3.TypedExtensionConfig, error) {
	conf, err := anypb.New(wrapperspb.String(string(doc)))
	if err != nil {
		return nil, err
	}
	w := &httpwasmv3.Wasm{Config: &wasmv3.PluginConfig{
		Name:   x.plugin.Name,
		RootId: "s3cors",
		Vm: &wasmv3.PluginConfig_VmConfig{VmConfig: &wasmv3.VmConfig{
			VmId:    x.plugin.VMID,
			Runtime: "envoy.wasm.runtime.v8",
			Code: &corev3.AsyncDataSource{Specifier: &corev3.AsyncDataSource_Local{
				Local: &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: x.plugin.Module}},
			}},
		}},
		Configuration: conf,
		FailurePolicy: wasmv3.FailurePolicy_FAIL_RELOAD,
	}}
	tc, err := anypb.New(w)
	if err != nil {
		return nil, err
	}
	return &corev3.TypedExtensionConfig{Name: x.plugin.Name, TypedConfig: tc}, nil
}
