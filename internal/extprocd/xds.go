package extprocd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	httpwasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	extensionv3 "github.com/envoyproxy/go-control-plane/envoy/service/extension/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/extproc"
)

// DefaultConfigName is the ECDS resource the daemon asks a control plane for: the name of the
// wasm filter whose configuration the control plane serves (internal/controlplane's
// Plugin.Name default).
const DefaultConfigName = "s3cors"

// maxECDSMessage is the largest ECDS response the daemon receives: a policy image of
// evaluator.MaxImageSize and the filter configuration around it.
const maxECDSMessage = evaluator.MaxImageSize + 1<<20

// xdsRetry is how long the daemon waits before it opens a new ECDS stream after one failed.
const xdsRetry = time.Second

// xdsQuietWarning is how long the daemon waits for a first configuration before it warns
// that none has come (a variable for tests).
var xdsQuietWarning = 10 * time.Second

// xdsSource takes the configuration from a control plane, as an Envoy takes the wasm filter's:
// one ECDS (extension config discovery) stream asking for the filter's TypedExtensionConfig,
// whose plugin configuration is the s3cors configuration (JSON or a compiled policy image).
// Each configuration that loads is swapped in and ACKed; one that does not is NACKed with the
// reason, counted and logged, and the last good one stays live, as for a file.
type xdsSource struct {
	addr, name string
	holder     *extproc.PolicyHolder
	metrics    *Metrics
	log        *slog.Logger
	// onResult, when set (tests), is told the outcome of every configuration received.
	onResult func(ReloadResult)

	conn   *grpc.ClientConn
	ctx    context.Context // the streams'; cancelled by close
	cancel context.CancelFunc
	stream extensionv3.ExtensionConfigDiscoveryService_StreamExtensionConfigsClient
	// endStream cancels the stream's own context: a dropped stream must end, or grpc-go
	// keeps it and its goroutine until ctx ends.
	endStream context.CancelFunc
	// version and nonce are what the next request acknowledges: the last version accepted
	// and the nonce of the last response, accepted or not.
	version, nonce string
}

func newXDSSource(addr, name string, m *Metrics, log *slog.Logger) (*xdsSource, error) {
	if name == "" {
		name = DefaultConfigName
	}
	// Plaintext, as the control plane's --xds-listen serves it: run both on loopback or
	// behind a mesh's mTLS. Messages up to the largest image that loads, as Envoy (no limit
	// by default) takes them, not gRPC's default 4 MiB: an image passes 4 MiB at about
	// 45,000 buckets.
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxECDSMessage)))
	if err != nil {
		return nil, fmt.Errorf("extprocd: control plane %q: %w", addr, err)
	}
	x := &xdsSource{addr: addr, name: name, holder: &extproc.PolicyHolder{}, metrics: m, log: log, conn: conn}
	x.ctx, x.cancel = context.WithCancel(context.Background())
	return x, nil
}

// source is the LoadedPolicy.Source of a configuration from the control plane.
func (x *xdsSource) source() string { return "xds://" + x.addr + "/" + x.name }

func (x *xdsSource) close() {
	x.cancel()
	_ = x.conn.Close()
}

// first waits for the first configuration that loads, reopening the stream while the control
// plane cannot be reached, until ctx ends.
func (x *xdsSource) first(ctx context.Context) (*extproc.LoadedPolicy, error) {
	stop := context.AfterFunc(ctx, x.cancel)
	defer stop()
	// The control plane never answers a resource name it does not serve: say so, rather than
	// wait in silence.
	quiet := time.AfterFunc(xdsQuietWarning, func() {
		x.log.LogAttrs(ctx, slog.LevelWarn, "no configuration from the control plane yet: is --config-name the control plane's --filter-name?",
			slog.String("config_from", x.addr), slog.String("config_name", x.name))
	})
	defer quiet.Stop()
	for {
		if p := x.holder.Load(); p != nil {
			return p, nil
		}
		if err := x.step(); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("extprocd: no configuration from the control plane %q: %w", x.addr, ctx.Err())
			}
			x.log.LogAttrs(ctx, slog.LevelWarn, "waiting for the control plane", slog.String("config_from", x.addr), slog.String("error", err.Error()))
			select {
			case <-ctx.Done():
			case <-time.After(xdsRetry):
			}
		}
	}
}

// follow applies every configuration the control plane sends until close, reopening the
// stream when it breaks.
func (x *xdsSource) follow() {
	for x.ctx.Err() == nil {
		if err := x.step(); err != nil && x.ctx.Err() == nil {
			x.log.LogAttrs(x.ctx, slog.LevelWarn, "control plane stream broken; keeping the last good configuration",
				slog.String("config_from", x.addr), slog.String("error", err.Error()))
			select {
			case <-x.ctx.Done():
			case <-time.After(xdsRetry):
			}
		}
	}
}

// step opens the stream if there is none, then receives and applies one response. An error
// is the stream's: it is dropped, for the next step to open another.
func (x *xdsSource) step() error {
	if x.stream == nil {
		ctx, cancel := context.WithCancel(x.ctx)
		st, err := extensionv3.NewExtensionConfigDiscoveryServiceClient(x.conn).StreamExtensionConfigs(ctx)
		if err != nil {
			cancel()
			return err
		}
		x.stream, x.endStream, x.nonce = st, cancel, "" // a nonce belongs to its stream
		if err := x.send(nil); err != nil {
			x.drop()
			return err
		}
	}
	resp, err := x.stream.Recv()
	if err != nil {
		x.drop()
		return err
	}
	x.nonce = resp.GetNonce()
	res := x.apply(resp)
	if x.onResult != nil {
		x.onResult(res)
	}
	var detail *statuspb.Status
	if res.Refused != "" {
		detail = &statuspb.Status{Code: int32(codes.InvalidArgument), Message: res.Err.Error()}
	} else {
		x.version = resp.GetVersionInfo()
	}
	if err := x.send(detail); err != nil {
		x.drop()
		return err
	}
	return nil
}

// drop ends the stream, for the next step to open another.
func (x *xdsSource) drop() {
	x.endStream()
	x.stream, x.endStream = nil, nil
}

// send asks for the resource, acknowledging the last response (a NACK when detail is set).
func (x *xdsSource) send(detail *statuspb.Status) error {
	return x.stream.Send(&discoveryv3.DiscoveryRequest{
		Node:          &corev3.Node{Id: "s3cors-extproc", Cluster: "s3cors-extproc"},
		TypeUrl:       resourcev3.ExtensionConfigType,
		ResourceNames: []string{x.name},
		VersionInfo:   x.version,
		ResponseNonce: x.nonce,
		ErrorDetail:   detail,
	})
}

// apply loads the configuration a response carries and makes it live.
func (x *xdsSource) apply(resp *discoveryv3.DiscoveryResponse) ReloadResult {
	const trigger = "control plane"
	attrs := []slog.Attr{slog.String("config_from", x.addr), slog.String("version", resp.GetVersionInfo())}
	doc, err := x.document(resp)
	if err == nil && doc == nil {
		// ECDS's state of the world without our resource: nothing to apply.
		x.log.LogAttrs(x.ctx, slog.LevelWarn, "the control plane sent no configuration for the filter; keeping the last good one", attrs...)
		return ReloadResult{Trigger: trigger}
	}
	var p *extproc.LoadedPolicy
	if err == nil {
		p, err = loadDocument(x.source(), doc)
	}
	live := x.holder.Load()
	if err != nil {
		x.metrics.reloadFailed(reloadInvalid)
		x.log.LogAttrs(x.ctx, slog.LevelError, "configuration from the control plane refused; keeping the last good configuration",
			appendLoadError(attrs, err)...)
		return ReloadResult{Trigger: trigger, Refused: reloadInvalid, Err: err}
	}
	if live != nil && live.Hash == p.Hash {
		x.metrics.lastReloadOK.Set(1)
		return ReloadResult{Trigger: trigger}
	}
	x.holder.Store(p)
	x.metrics.configLoaded(p, live != nil)
	x.log.LogAttrs(x.ctx, slog.LevelInfo, "configuration from the control plane", append(attrs, slog.String("hash", p.Hash))...)
	return ReloadResult{Trigger: trigger, Swapped: true}
}

// document returns the plugin configuration of the filter named x.name in resp, nil when resp
// does not carry that filter.
func (x *xdsSource) document(resp *discoveryv3.DiscoveryResponse) ([]byte, error) {
	for _, r := range resp.GetResources() {
		var tc corev3.TypedExtensionConfig
		if err := r.UnmarshalTo(&tc); err != nil {
			return nil, fmt.Errorf("extprocd: ECDS resource: %w", err)
		}
		if tc.GetName() != x.name {
			continue
		}
		var w httpwasmv3.Wasm
		if err := tc.GetTypedConfig().UnmarshalTo(&w); err != nil {
			return nil, fmt.Errorf("extprocd: filter %q is not the wasm filter: %w", x.name, err)
		}
		conf := w.GetConfig().GetConfiguration()
		var s wrapperspb.StringValue
		if err := conf.UnmarshalTo(&s); err == nil {
			return []byte(s.GetValue()), nil
		}
		var b wrapperspb.BytesValue
		if err := conf.UnmarshalTo(&b); err == nil {
			return b.GetValue(), nil
		}
		return nil, fmt.Errorf("extprocd: filter %q: plugin configuration of type %q, want a string or bytes", x.name, conf.GetTypeUrl())
	}
	return nil, nil
}

// loadDocument loads a configuration as the wasm filter does: a compiled policy image when it
// is one, else a JSON (or YAML) configuration.
func loadDocument(source string, doc []byte) (*extproc.LoadedPolicy, error) {
	if !evaluator.IsImage(doc) {
		return extproc.LoadConfig(source, doc)
	}
	pol, err := evaluator.LoadImage(doc)
	if err != nil {
		return nil, fmt.Errorf("extprocd: config %q: %w", source, err)
	}
	sum := sha256.Sum256(doc)
	return &extproc.LoadedPolicy{Policy: pol, Hash: "sha256:" + hex.EncodeToString(sum[:]), Source: source, LoadedAt: time.Now()}, nil
}

var errFromControlPlane = errors.New("extprocd: the configuration comes from the control plane; nothing to reload")
