package controlplane

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	httpwasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	extensionv3 "github.com/envoyproxy/go-control-plane/envoy/service/extension/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/s3cors/s3cors/evaluator"
)

// ImageThreshold is the size of a configuration document above which the control plane
// pushes it as a compiled policy image (evaluator.CompileImage, carried as a BytesValue)
// instead of JSON: every worker VM of every Envoy then uses the image in place rather than
// parsing the JSON again on each push. It is `s3cors manifest --policy-image auto`'s
// threshold (manifest.PolicyImageThreshold, checked by a test).
const ImageThreshold = 256 << 10

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
	plugin  Plugin
	cache   *cache.LinearCache
	server  serverv3.Server
	log     *slog.Logger
	metrics *Metrics

	mu sync.Mutex
	// updates counts the cache's updates: the LinearCache's version is its count of
	// updates, so the version an Envoy acknowledges is the update it applied.
	updates uint64
	// pushed holds when each of the last few versions was handed to the cache, for the
	// time to each Envoy's acknowledgement.
	pushed map[string]time.Time
}

// keepPushed is how many recent versions XDS remembers the push time of.
const keepPushed = 64

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
	x := &XDS{plugin: p, cache: c, log: log, metrics: m, pushed: map[string]time.Time{}}
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
				x.acked(req.GetNode().GetId(), req.GetVersionInfo())
			}
			return nil
		},
	}
	x.server = serverv3.NewServer(ctx, c, cb)
	return x
}

// acked records an Envoy's acknowledgement of version: the time since its push.
func (x *XDS) acked(node, version string) {
	x.mu.Lock()
	at, ok := x.pushed[version]
	x.mu.Unlock()
	if !ok {
		return // an older push, or one of a previous process
	}
	d := time.Since(at)
	x.metrics.ackSeconds.Observe(d.Seconds())
	x.log.Debug("an Envoy acknowledged the filter configuration", "node", node, "xds_version", version, "after", d)
}

// Register adds the ECDS service to a gRPC server.
func (x *XDS) Register(g *grpc.Server) {
	extensionv3.RegisterExtensionConfigDiscoveryServiceServer(g, x.server)
}

// Push makes doc, an s3cors configuration, the filter configuration every Envoy gets; cfg,
// when not nil, is doc parsed (it spares parsing it again for a policy image). The version is
// the control plane's; the cache numbers its own (logged beside it).
func (x *XDS) Push(doc []byte, cfg *evaluator.Config, version uint64) error {
	start := time.Now()
	res, err := x.Resource(doc, cfg)
	if err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := x.cache.UpdateResource(x.plugin.Name, res); err != nil {
		return err
	}
	x.updates++
	v := strconv.FormatUint(x.updates, 10)
	now := time.Now()
	x.pushed[v] = now
	delete(x.pushed, strconv.FormatUint(x.updates-keepPushed, 10))
	x.log.Debug("filter configuration pushed", "version", version, "xds_version", v,
		"bytes", len(doc), "image", len(doc) > ImageThreshold, "took", now.Sub(start))
	return nil
}

// Resource is the ECDS resource for doc: the wasm filter, as envoy/wasm.yaml configures it,
// with doc as its plugin configuration, or, when doc is over ImageThreshold, its compiled
// policy image (a BytesValue, as `s3cors manifest --policy-image` writes it), compiled from
// cfg (doc parsed; nil to parse it here).
func (x *XDS) Resource(doc []byte, cfg *evaluator.Config) (*corev3.TypedExtensionConfig, error) {
	var value proto.Message = wrapperspb.String(string(doc))
	if len(doc) > ImageThreshold {
		if cfg == nil {
			var err error
			if cfg, err = evaluator.ParseConfig(doc); err != nil {
				return nil, fmt.Errorf("controlplane: compiling the policy image: %w", err)
			}
		}
		img, err := evaluator.CompileImage(cfg)
		if err != nil {
			return nil, fmt.Errorf("controlplane: compiling the policy image: %w", err)
		}
		value = wrapperspb.Bytes(img)
	}
	conf, err := anypb.New(value)
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
