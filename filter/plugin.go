// Package filter is the s3cors proxy-wasm plugin: it answers CORS preflights at the proxy and
// decorates actual responses exactly as Amazon S3 does for each bucket's CORS configuration.
//
// The plugin configuration is the s3cors configuration document (JSON; Istio's pluginConfig
// arrives as JSON) or a compiled policy image (s3cors compile): raw, as an Envoy
// google.protobuf.BytesValue, or wrapped as {"s3corsImage": "<base64>"} for pluginConfig.
// evaluator.LoadAny tells them apart and loads it once per root context (an image is used in
// place, checked whole first); any problem is logged in full at critical level and the plugin
// refuses to start (Envoy NACKs the update, or does not start). Per stream:
//
//   - a preflight (or a bad one) is answered with proxy_send_local_response, with S3's status,
//     headers and XML body; the request never reaches the upstream;
//   - an actual request to a bucket s3cors answers for goes upstream unchanged; on its response
//     the upstream's own Access-Control-* headers are removed (unless "upstreamCORSHeaders" is
//     "keep"), S3's are set and Vary is merged with the upstream's;
//   - anything else (not a bucket request, an unlisted bucket under "forward") is not touched.
//
// A reply goes without Content-Length (Envoy sets it from the body) and comes back through
// the plugin's own on_response_headers, which leaves it alone. Denials are logged at debug
// level only, with the reply's request id and client values cut at 256 bytes (anyone can send
// a preflight).
//
// Request bodies stream through: no body callback is exported. The plugin runs against
// abi.Host, so the same code runs in the module (cmd/s3cors-filter) and natively in tests
// (abi/abitest).
//
// Where it sits: an adapter. It imports the evaluator, filter/abi and internal/logcut, never
// another adapter or wasmhost; cmd/s3cors-filter is its main. Its tests run the plugin
// natively on abi/abitest and, in e2e, the built module in wasmhost.
package filter

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unsafe"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/filter/abi"
	"github.com/s3cors/s3cors/internal/logcut"
)

// Plugin implements abi.Plugin. A VM holds one Plugin, which serves every root context (one per
// plugin configuration sharing the VM) and their streams. The host serialises callbacks, so
// it needs no locking; it keeps its scratch space across callbacks so that a request leaves no
// garbage behind.
type Plugin struct {
	host    abi.Host
	roots   map[uint32]*rootContext
	streams map[uint32]*stream
	free    []*stream // released stream records, reused

	// Scratch, reused by every callback.
	replyHeaders []abi.Header
	respHeaders  []abi.Header
	reqHeaders   []abi.Header
	forwarded    []byte
	vary         []string
	removed      []string
	line         []byte
}

// rootContext is one plugin configuration: its compiled policy, its metrics and the Decision
// every stream under it reuses.
type rootContext struct {
	id       uint32
	policy   *evaluator.Policy // nil until a configuration was accepted
	req      evaluator.Request
	decision evaluator.Decision
	metrics  metrics
}

// streamState is what a stream's response callback has to do.
type streamState uint8

const (
	streamNew      streamState = iota // no decision yet (request headers not seen, or failed)
	streamPass                        // not ours: touch nothing
	streamReplied                     // answered locally: the response is our own reply
	streamDecorate                    // apply the response plan: a decorated response
	streamForward                     // apply the response plan (strip, or Vary under "vary": "always")
)

// stream is what the response side of a stream needs from its request side. Records are
// pooled: the plan's Set points into set and buf, which the next stream that gets the
// record reuses.
type stream struct {
	root  *rootContext
	state streamState
	plan  evaluator.ResponsePlan // a copy of the Decision's, owning its memory
	set   []evaluator.Header
	buf   []byte
}

// maxFreeStreams bounds the record pool, so that a burst of concurrent streams does not stay
// resident forever.
const maxFreeStreams = 1024

// New returns a plugin talking to host. It makes no host call, so it may run in a package init.
func New(host abi.Host) *Plugin {
	return &Plugin{
		host:    host,
		roots:   map[uint32]*rootContext{},
		streams: map[uint32]*stream{},
	}
}

var _ abi.Plugin = (*Plugin)(nil)

// OnVMStart accepts every VM configuration: s3cors reads none.
func (p *Plugin) OnVMStart(root, vmConfigSize uint32) bool {
	p.rootContext(root)
	return true
}

// OnConfigure reads the plugin configuration and compiles it. On any problem it logs every one
// at critical level, keeps the configuration it had (if any) and returns false, so Envoy
// refuses the new configuration.
func (p *Plugin) OnConfigure(root, pluginConfigSize uint32) bool {
	r := p.rootContext(root)
	if err := r.metrics.define(p.host); err != nil {
		p.log(abi.LogWarn, "s3cors: defining metrics: "+err.Error())
	}
	if err := p.checkImageSize(pluginConfigSize); err != nil {
		r.metrics.inc(p.host, metricConfigRejected)
		p.logRejection("not read", err)
		return false
	}
	data, err := p.host.GetBuffer(abi.PluginConfiguration, 0, pluginConfigSize)
	if err != nil {
		r.metrics.inc(p.host, metricConfigRejected)
		p.log(abi.LogCritical, "s3cors: plugin configuration rejected; the filter refuses to start: reading the plugin configuration: "+err.Error())
		return false
	}
	pol, err := load(data)
	if err != nil {
		r.metrics.inc(p.host, metricConfigRejected)
		p.logRejection(configHash(data), err)
		return false
	}
	r.policy = pol
	r.metrics.inc(p.host, metricConfigAccepted)
	if p.enabled(abi.LogInfo) {
		if st, ok := pol.ImageStats(); ok {
			// An image is named by its own checksum, already verified: SHA-256 in the
			// module would cost more than loading the image.
			p.log(abi.LogInfo, fmt.Sprintf("s3cors: policy image accepted: %d bytes, %d %s, %d distinct rule %s, image crc32c:%08x",
				st.Bytes, st.Buckets, plural(st.Buckets, "bucket", "buckets"), st.RuleSets, plural(st.RuleSets, "set", "sets"), st.Checksum))
		} else {
			p.log(abi.LogInfo, summary(pol.Config(), configHash(data)))
		}
	}
	return true
}

// checkImageSize refuses a policy image over evaluator.MaxImageSize before it is read into
// the module: only its first bytes are, to tell an image from a document.
func (p *Plugin) checkImageSize(size uint32) error {
	if size <= evaluator.MaxImageSize {
		return nil
	}
	// A failure to read is reported when the whole is read, after this check.
	if head, err := p.host.GetBuffer(abi.PluginConfiguration, 0, 16); err == nil && evaluator.IsImage(head) {
		return fmt.Errorf("filter: the policy image is %d bytes, over the %d-byte limit (evaluator.MaxImageSize)", size, evaluator.MaxImageSize)
	}
	return nil
}

// configHash names a plugin configuration as the ext_proc server names its file
// (s3cors_config_info{hash}): "sha256:" and the hex SHA-256 of the bytes exactly as Envoy
// handed them over, so that the logs say which configuration each proxy runs.
func configHash(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// load compiles a plugin configuration, or loads an image. The policy keeps what it is given
// (an image is used in place), so a small buffer, which lives in memory the next callback
// reuses, is copied first; a large one is memory of its own (abi.LargeData), kept as it is.
func load(data []byte) (*evaluator.Policy, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New(`filter: the plugin configuration is empty: it must be an s3cors configuration document (JSON), at least {"buckets": {}}, or a policy image`)
	}
	if len(data) <= abi.LargeData {
		data = bytes.Clone(data)
	}
	return evaluator.LoadAny(data)
}

// logRejection logs why a configuration was refused: a summary naming the configuration by
// its hash, then one line per problem with its path, all at critical level.
func (p *Plugin) logRejection(hash string, err error) {
	var ve *evaluator.ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) == 0 {
		p.log(abi.LogCritical, "s3cors: plugin configuration rejected; the filter refuses to start: "+err.Error()+" (hash: "+hash+")")
		return
	}
	n := len(ve.Problems)
	p.log(abi.LogCritical, fmt.Sprintf("s3cors: plugin configuration rejected; the filter refuses to start: %d %s (hash: %s):", n, plural(n, "problem", "problems"), hash))
	for _, pr := range ve.Problems {
		p.log(abi.LogCritical, "s3cors: invalid configuration: "+pr.String())
	}
}

// summary is the info line of an accepted configuration: its size, its options and its hash.
func summary(cfg *evaluator.Config, hash string) string {
	if cfg == nil {
		return "s3cors: configuration accepted: hash: " + hash
	}
	def := "none"
	if cfg.Default != nil {
		def = strconv.Itoa(len(cfg.Default.Rules)) + " " + plural(len(cfg.Default.Rules), "rule", "rules")
	}
	return fmt.Sprintf("s3cors: configuration accepted: %d %s, default: %s, unlistedBuckets: %q, upstreamCORSHeaders: %q, vary: %q, hash: %s",
		len(cfg.Buckets), plural(len(cfg.Buckets), "bucket", "buckets"), def, cfg.UnlistedBuckets, cfg.UpstreamCORSHeaders, cfg.Vary, hash)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// OnContextCreate records a root context, or a stream and the root it belongs to.
func (p *Plugin) OnContextCreate(ctx, parent uint32) {
	if parent == 0 {
		p.rootContext(ctx)
		return
	}
	r := p.roots[parent]
	if r == nil {
		return // not a root we know: its streams pass through
	}
	s := p.newStream()
	s.root = r
	p.streams[ctx] = s
}

func (p *Plugin) rootContext(id uint32) *rootContext {
	r := p.roots[id]
	if r == nil {
		r = &rootContext{id: id}
		p.roots[id] = r
	}
	return r
}

func (p *Plugin) newStream() *stream {
	if n := len(p.free); n > 0 {
		s := p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
		return s
	}
	return &stream{}
}

// OnRequestHeaders decides the request. What the response side needs is copied into the
// stream's record: request headers (and everything the host returned) are gone once this
// returns.
func (p *Plugin) OnRequestHeaders(ctx, _ uint32, _ bool) abi.Action {
	s := p.streams[ctx]
	if s == nil || s.root.policy == nil {
		return abi.Continue
	}
	r := s.root
	if err := p.readRequest(&r.req); err != nil {
		s.state = streamPass
		p.internalError(r, "reading the request headers", err)
		return abi.Continue
	}
	d := &r.decision
	r.policy.Evaluate(&r.req, d)
	switch d.Outcome {
	case evaluator.Reply:
		return p.reply(s, d)
	case evaluator.Decorate:
		s.state = streamDecorate
		s.keep(d.Response())
	case evaluator.Forward:
		s.state = streamForward
		s.keep(d.Response())
		r.metrics.incReason(p.host, d.Reason)
	default:
		s.state = streamPass
		r.metrics.incReason(p.host, d.Reason)
	}
	if d.Reason == evaluator.ReasonActualAmbiguous {
		p.logAmbiguous(&r.req, d)
	}
	return abi.Continue
}

// readRequest fills req from the request headers the evaluator reads, asking the host for
// each; an absent header is not an error. Envoy turns an HTTP/1 Host line into :authority and
// joins repeated ones with ","; a "host" header left beside :authority (HTTP/2) is read as
// such. X-Forwarded-Host is read with its first value: repeated ones are joined by Envoy too.
// Forwarded is no inline header, so Envoy keeps its lines apart and proxy_get_header_map_value
// returns the first; when there is one, the whole map is read and every line joined by ",",
// as RFC 7239 reads them, in p.forwarded, valid until the next request.
func (p *Plugin) readRequest(req *evaluator.Request) error {
	*req = evaluator.Request{}
	for f := range evaluator.RequestFields {
		v, found, err := p.host.GetHeader(abi.RequestHeaders, f.Name())
		if err != nil {
			return err
		}
		if found {
			req.Set(f, v)
		}
	}
	if !req.HasForwarded {
		return nil
	}
	hs, err := p.host.GetHeaders(abi.RequestHeaders, p.reqHeaders[:0])
	p.reqHeaders = hs
	if err != nil {
		return err
	}
	b, n := p.forwarded[:0], 0
	for _, h := range hs {
		if h.Name == "forwarded" {
			if n > 0 {
				b = append(b, ',')
			}
			b = append(b, h.Value...)
			n++
		}
	}
	p.forwarded = b
	if n > 1 {
		req.Forwarded = unsafe.String(unsafe.SliceData(b), len(b))
	}
	return nil
}

// reply answers the request at the proxy. Content-Length is left to Envoy, which sets it from
// the body (and which keeps the Content-Type we give).
func (p *Plugin) reply(s *stream, d *evaluator.Decision) abi.Action {
	r := s.root
	hs := p.replyHeaders[:0]
	for _, h := range d.Headers {
		if !strings.EqualFold(h.Name, "content-length") {
			hs = append(hs, abi.Header(h))
		}
	}
	p.replyHeaders = hs
	if err := p.host.SendLocalResponse(uint32(d.Status), d.Reason.ReplyDetails(), d.Body, hs, abi.NoGRPCStatus); err != nil {
		// Unanswered, the request must at least reach the upstream unchanged.
		s.state = streamPass
		p.internalError(r, "sending the local reply", err)
		return abi.Continue
	}
	s.state = streamReplied
	r.metrics.incReason(p.host, d.Reason)
	if d.Reason != evaluator.ReasonAllowed {
		p.logDenied(&r.req, d)
	}
	return abi.Pause
}

// keep copies the response plan into the record: the Decision it views serves the next
// request of the root context before this stream's response arrives.
func (s *stream) keep(pl evaluator.ResponsePlan) {
	n := 0
	for _, h := range pl.Set {
		n += len(h.Name) + len(h.Value)
	}
	if cap(s.buf) < n {
		s.buf = make([]byte, 0, n)
	}
	// buf has room for everything, so appending never moves it and the strings stay valid.
	s.buf = s.buf[:0]
	s.set = s.set[:0]
	for _, h := range pl.Set {
		s.set = append(s.set, evaluator.Header{Name: s.save(h.Name), Value: s.save(h.Value)})
	}
	s.plan = pl
	s.plan.Set = s.set
}

func (s *stream) save(v string) string {
	off := len(s.buf)
	s.buf = append(s.buf, v...)
	if len(v) == 0 {
		return ""
	}
	return unsafe.String(&s.buf[off], len(v))
}

// OnResponseHeaders decorates or strips the upstream's response as decided on the request
// side. It never touches a response it did not decide on, nor its own local reply.
func (p *Plugin) OnResponseHeaders(ctx, _ uint32, _ bool) abi.Action {
	s := p.streams[ctx]
	if s == nil {
		return abi.Continue
	}
	if s.state != streamDecorate && s.state != streamForward || !s.plan.Changes() {
		return abi.Continue
	}
	r := s.root
	hs, err := p.host.GetHeaders(abi.ResponseHeaders, p.respHeaders[:0])
	p.respHeaders = hs
	if err != nil {
		// Without the upstream's headers nothing can be stripped or merged; still decorate.
		p.internalError(r, "reading the response headers", err)
		hs = hs[:0]
	}
	vary, removed := p.vary[:0], p.removed[:0]
	for _, h := range hs {
		switch s.plan.Edit(h.Name) {
		case evaluator.RemoveHeader:
			if !contains(removed, h.Name) {
				removed = append(removed, h.Name)
			}
		case evaluator.MergeHeader:
			vary = append(vary, h.Value)
		}
	}
	p.vary, p.removed = vary, removed
	var failed error
	for _, name := range removed {
		if err := p.host.RemoveHeader(abi.ResponseHeaders, name); err != nil && failed == nil {
			failed = err
		}
	}
	// Replace, not add: under "keep" the upstream may carry the same header, and two
	// Access-Control-Allow-Origin values make the browser fail the request.
	for _, h := range s.plan.Set {
		if err := p.host.ReplaceHeader(abi.ResponseHeaders, h.Name, h.Value); err != nil && failed == nil {
			failed = err
		}
	}
	if s.plan.Vary {
		var err error
		if len(vary) == 0 {
			err = p.host.AddHeader(abi.ResponseHeaders, "vary", evaluator.VaryValue)
		} else {
			err = p.host.ReplaceHeader(abi.ResponseHeaders, "vary", evaluator.MergeVary(vary))
		}
		if err != nil && failed == nil {
			failed = err
		}
	}
	if s.state == streamDecorate {
		r.metrics.inc(p.host, metricActualDecorated)
	}
	if failed != nil {
		p.internalError(r, "changing the response headers", failed)
	}
	return abi.Continue
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// OnDone lets the host delete any context at once: nothing is pending.
func (p *Plugin) OnDone(uint32) bool { return true }

// OnDelete releases a stream's record, or forgets a root context.
func (p *Plugin) OnDelete(ctx uint32) {
	if s, ok := p.streams[ctx]; ok {
		delete(p.streams, ctx)
		s.root, s.state, s.plan = nil, streamNew, evaluator.ResponsePlan{}
		s.set = s.set[:0]
		if len(p.free) < maxFreeStreams {
			p.free = append(p.free, s)
		}
		return
	}
	delete(p.roots, ctx)
}

// RecoveredPanic counts a panic the dispatcher recovered from. Every root context counts into
// the same Envoy stat, so any one will do.
func (p *Plugin) RecoveredPanic(string) {
	for _, r := range p.roots {
		if r.metrics.defined {
			r.metrics.inc(p.host, metricInternalErrors)
			return
		}
	}
}

// internalError counts and logs a host call that failed where it should not have.
func (p *Plugin) internalError(r *rootContext, doing string, err error) {
	r.metrics.inc(p.host, metricInternalErrors)
	p.log(abi.LogError, "s3cors: "+doing+": "+err.Error())
}

// logDenied says at debug level why a preflight was refused, ending with the reply's
// x-amz-request-id so that the id a user reports (from the header or the XML body) finds the
// line. It stays at debug: preflights come before authentication, so anyone can make them, and
// a line per denial at info would let a client flood the proxy's log. Values the client chose
// are cut at logcut.Max bytes. It formats into a reused buffer, and only when the proxy
// would keep the line.
func (p *Plugin) logDenied(req *evaluator.Request, d *evaluator.Decision) {
	if !p.enabled(abi.LogDebug) {
		return
	}
	b := append(p.line[:0], "s3cors: preflight denied: "...)
	b = strconv.AppendInt(b, int64(d.Status), 10)
	b = append(b, ' ')
	b = append(b, d.Reason.String()...)
	if d.Ambiguity != evaluator.AmbiguityNone {
		b = p.appendAmbiguity(b, req, d)
	}
	b = append(b, ": bucket "...)
	b = appendBounded(b, d.Bucket)
	b = append(b, ", key "...)
	b = appendBounded(b, d.Key)
	b = append(b, ", origin "...)
	b = appendOptional(b, req.Origin, req.HasOrigin)
	b = append(b, ", method "...)
	b = appendOptional(b, req.RequestMethod, req.HasRequestMethod)
	b = append(b, ", headers "...)
	b = appendOptional(b, req.RequestHeaders, req.HasRequestHeaders)
	b = append(b, ", x-amz-request-id "...)
	b = strconv.AppendQuote(b, d.RequestID())
	p.line = b
	_ = p.host.Log(abi.LogDebug, unsafe.String(unsafe.SliceData(b), len(b)))
}

// logAmbiguous says at debug level why an actual request got no CORS: the store may serve
// it from another bucket than the one s3cors reads (evaluator.Ambiguity). Like logDenied it
// stays at debug, as anyone can send such requests.
func (p *Plugin) logAmbiguous(req *evaluator.Request, d *evaluator.Decision) {
	if !p.enabled(abi.LogDebug) {
		return
	}
	b := append(p.line[:0], "s3cors: actual request undecorated: "...)
	b = append(b, d.Reason.String()...)
	b = p.appendAmbiguity(b, req, d)
	p.line = b
	_ = p.host.Log(abi.LogDebug, unsafe.String(unsafe.SliceData(b), len(b)))
}

// appendAmbiguity appends why the bucket is uncertain and what the request said about it:
// " (suffix_in_host): authority "...", path "...", host ..., x-forwarded-host ...", and
// ", forwarded "..."" when the request has one. The
// path is cut before its query, which may hold a presigned URL's signature.
func (p *Plugin) appendAmbiguity(b []byte, req *evaluator.Request, d *evaluator.Decision) []byte {
	b = append(b, " ("...)
	b = append(b, d.Ambiguity.String()...)
	b = append(b, "): authority "...)
	b = appendBounded(b, req.Authority)
	b = append(b, ", path "...)
	path := req.Path
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	b = appendBounded(b, path)
	b = append(b, ", host "...)
	b = appendOptional(b, req.Host, req.HasHost)
	b = append(b, ", x-forwarded-host "...)
	b = appendOptional(b, req.ForwardedHost, req.HasForwardedHost)
	if req.HasForwarded {
		b = append(b, ", forwarded "...)
		b = appendBounded(b, req.Forwarded)
	}
	return b
}

func appendOptional(b []byte, v string, ok bool) []byte {
	if !ok {
		return append(b, "(none)"...)
	}
	return appendBounded(b, v)
}

// appendBounded appends v quoted, cut as logcut cuts it: "abc"... (cut, 1000 bytes).
func appendBounded(b []byte, v string) []byte {
	shown, cut := logcut.Cut(v)
	b = strconv.AppendQuote(b, shown)
	if cut {
		b = logcut.AppendMark(b, len(v))
	}
	return b
}

// enabled reports whether the proxy keeps lines at level; if it cannot tell, it does.
func (p *Plugin) enabled(level abi.LogLevel) bool {
	current, err := p.host.LogLevel()
	return err != nil || level >= current
}

func (p *Plugin) log(level abi.LogLevel, msg string) {
	_ = p.host.Log(level, msg)
}
