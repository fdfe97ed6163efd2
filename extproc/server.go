package extproc

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/extproc/internal/wire"
	"github.com/s3cors/s3cors/internal/logcut"
)

// ServerOptions tunes [NewServer]. The zero value is ready to use.
type ServerOptions struct {
	// Logger receives protocol errors (warn) and, at debug, one line per decision with bucket,
	// origin, method, path (without its query), the Access-Control-Request-Method and -Headers
	// (each value cut at 256 bytes, marked), outcome, reason and rule, and for a reply its
	// status and x-amz-request-id. Default slog.Default().
	Logger *slog.Logger
	// Observer is told decisions, errors and latencies, for metrics. Default: none.
	Observer Observer
}

// Server is the s3cors ExternalProcessorServer. It is safe for concurrent use: every stream
// is independent and reads the live policy from its [PolicyHolder] once.
type Server struct {
	extprocv3.UnimplementedExternalProcessorServer

	policy  *PolicyHolder
	metrics Observer
	log     *slog.Logger

	active atomic.Int64 // open streams

	// Misconfigurations that would otherwise log on every request are logged once at warn.
	warnedPhase         atomic.Bool
	warnedObservability atomic.Bool
}

var _ extprocv3.ExternalProcessorServer = (*Server)(nil)

// NewServer returns a server answering from the policy live in policy.
func NewServer(policy *PolicyHolder, opts ServerOptions) *Server {
	s := &Server{policy: policy, metrics: opts.Observer, log: opts.Logger}
	if s.metrics == nil {
		s.metrics = nopObserver{}
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s
}

// ActiveStreams returns the number of streams open now.
func (s *Server) ActiveStreams() int64 { return s.active.Load() }

// streamPhase is where a stream stands in the ext_proc exchange.
type streamPhase uint8

const (
	awaitRequestHeaders  streamPhase = iota // nothing received yet
	awaitResponseHeaders                    // request decided; its response must be mutated
)

// stream is one HTTP request's state. Streams are pooled so that the Decision's internal
// buffers and the answer's encoding buffers are reused, as the evaluator intends.
type stream struct {
	phase   streamPhase
	req     evaluator.Request
	dec     evaluator.Decision
	scratch []byte // readRequest's buffer

	// The answer being built: its headers, the upstream headers to remove, the upstream's
	// Vary lines, and its wire bytes (in buf) as handed to SendMsg.
	set    []wire.SetHeader
	remove []string
	vary   []string
	buf    []byte
	out    wire.Response

	in wire.Request // the message received last
}

// maxPooledBuffer bounds the buffers a pooled stream keeps: an answer to a hostile request
// (a 60 KB Access-Control-Request-Headers, echoed) must not pin that much memory for every
// pooled stream afterwards.
const maxPooledBuffer = 16 << 10

// maxPooledHeaders bounds, likewise, the header lists a pooled stream keeps (a request's
// headers, 48 bytes each, and the answer's sets, removals and Vary lines): Envoy sends at most
// 100 headers by default, but a 4 MiB message can carry hundreds of thousands.
const maxPooledHeaders = 256

// reset makes st ready for the pool: no request values or answer kept alive by it, and no
// oversized buffer.
func (st *stream) reset() {
	st.req = evaluator.Request{}
	clear(st.set[:cap(st.set)])
	clear(st.remove[:cap(st.remove)])
	clear(st.vary[:cap(st.vary)])
	st.set, st.remove, st.vary = st.set[:0], st.remove[:0], st.vary[:0]
	st.out.Set(nil)
	st.in.Trim(maxPooledHeaders, maxPooledBuffer)
	if cap(st.set) > maxPooledHeaders {
		st.set = nil
	}
	if cap(st.remove) > maxPooledHeaders {
		st.remove = nil
	}
	if cap(st.vary) > maxPooledHeaders {
		st.vary = nil
	}
	if cap(st.buf) > maxPooledBuffer {
		st.buf = nil
	}
	if cap(st.scratch) > maxPooledBuffer {
		st.scratch = nil
	}
}

var streamPool = sync.Pool{New: func() any { return new(stream) }}

// errStreamDone ends a stream successfully: the server has nothing more to do for this
// request and closes the stream, which Envoy takes as "no further processing" (so even an
// Envoy without allow_mode_override stops sending messages).
var errStreamDone = errors.New("extproc: stream done")

// answered says which message an answer was for, to record its latency.
type answered uint8

const (
	answeredOther answered = iota // not timed: body and trailers phases
	answeredRequestHeaders
	answeredResponseHeaders
)

// Process serves one ext_proc stream, i.e. one HTTP request.
func (s *Server) Process(srv extprocv3.ExternalProcessor_ProcessServer) error {
	start := time.Now()
	s.active.Add(1)
	s.metrics.StreamStarted()
	st := streamPool.Get().(*stream)
	st.phase = awaitRequestHeaders
	defer s.endStream(st, start)

	ctx := srv.Context()
	for {
		// RecvMsg, not Recv: the message is read from its wire bytes (see wire.Request).
		st.in.Prepare()
		err := srv.RecvMsg(&st.in)
		if errors.Is(err, io.EOF) {
			return nil // Envoy closed its side: the request is over
		}
		if err != nil {
			// Envoy resets the stream whenever the downstream request goes away; that is not
			// an error of ours.
			if c := status.Code(err); c != codes.Canceled && c != codes.DeadlineExceeded && ctx.Err() == nil {
				s.metrics.Failed(ErrorRecv)
				s.log.LogAttrs(ctx, slog.LevelWarn, "ext_proc stream receive failed", slog.String("error", err.Error()))
			}
			return err
		}
		received := time.Now()
		resp, kind, err := s.handle(ctx, st, st.in.Received())
		if err != nil && !errors.Is(err, errStreamDone) {
			return err
		}
		if resp != nil {
			// SendMsg, not Send: resp is a *wire.Response, or a *ProcessingResponse for the
			// rare phases.
			if serr := srv.SendMsg(resp); serr != nil {
				if ctx.Err() == nil {
					s.metrics.Failed(ErrorSend)
					s.log.LogAttrs(ctx, slog.LevelWarn, "ext_proc stream send failed", slog.String("error", serr.Error()))
				}
				return serr
			}
			switch kind {
			case answeredRequestHeaders:
				s.metrics.Answered(PhaseRequestHeaders, time.Since(received))
			case answeredResponseHeaders:
				s.metrics.Answered(PhaseResponseHeaders, time.Since(received))
			}
		}
		if err != nil { // errStreamDone
			return nil
		}
	}
}

func (s *Server) endStream(st *stream, start time.Time) {
	st.reset()
	streamPool.Put(st)
	s.active.Add(-1)
	s.metrics.StreamEnded(time.Since(start))
}

// handle answers one message. It returns the message to send (nil for none), which message it
// answers, and errStreamDone when the stream should end after the send, or a gRPC status error
// for a protocol violation.
func (s *Server) handle(ctx context.Context, st *stream, msg *wire.Incoming) (any, answered, error) {
	if msg.Observability {
		// Envoy ignores every answer in observability mode, so CORS cannot be enforced. Close
		// the stream, which the protocol allows, and say why once.
		s.metrics.Failed(ErrorObservability)
		if !s.warnedObservability.Swap(true) {
			s.log.LogAttrs(ctx, slog.LevelWarn, "ext_proc filter runs in observability_mode: s3cors cannot answer preflights or decorate responses; set observability_mode: false")
		}
		return nil, answeredOther, errStreamDone
	}
	switch msg.Kind {
	case wire.KindRequestHeaders:
		if st.phase != awaitRequestHeaders {
			return nil, answeredOther, s.protocolError(ctx, codes.FailedPrecondition, ErrorOutOfOrder, "extproc: request_headers received twice on one stream")
		}
		done, err := s.requestHeaders(ctx, st, msg.Headers)
		if err != nil {
			return nil, answeredOther, err
		}
		if done {
			return &st.out, answeredRequestHeaders, errStreamDone
		}
		st.phase = awaitResponseHeaders
		return &st.out, answeredRequestHeaders, nil

	case wire.KindResponseHeaders:
		if st.phase == awaitRequestHeaders {
			// Envoy sends the response headers alone when it answered the request itself
			// before the filter chain ran: a codec error (a raw "#", control or non-ASCII
			// bytes), a path it refuses. That reply is Envoy's, and it should reach the
			// client as Envoy wrote it. Nothing was decided, so nothing is granted: any
			// Access-Control-* header goes, none is added.
			s.log.LogAttrs(ctx, slog.LevelDebug, "ext_proc response_headers without request_headers: Envoy's own reply; no CORS headers")
			d := &st.dec
			d.Outcome, d.Reason, d.Bucket, d.Key, d.Rule, d.HeaderSet = evaluator.Forward, evaluator.ReasonNotBucket, "", "", -1, -1
			d.Status, d.Headers, d.Body, d.StripUpstream = 0, nil, nil, true
		}
		st.responseHeaders(msg.Headers)
		return &st.out, answeredResponseHeaders, errStreamDone

	// Bodies and trailers reach us only if the filter's processing_mode asks for them, which
	// s3cors never needs. Answering CONTINUE keeps such a misconfigured Envoy working (it
	// would otherwise wait for message_timeout on every request); the warning says how to fix
	// it. They never come before the request headers.
	case wire.KindRequestBody, wire.KindResponseBody, wire.KindRequestTrailers, wire.KindResponseTrailers:
		if st.phase == awaitRequestHeaders {
			return nil, answeredOther, s.protocolError(ctx, codes.FailedPrecondition, ErrorOutOfOrder, "extproc: %s received before request_headers", msg.Kind)
		}
		return s.continuePhase(ctx, msg.Kind), answeredOther, nil

	default:
		return nil, answeredOther, s.protocolError(ctx, codes.InvalidArgument, ErrorUnknownMessage, "extproc: processing request carries no request, headers, body or trailers")
	}
}

// continuePhase answers a body or trailers message with CONTINUE and no change.
func (s *Server) continuePhase(ctx context.Context, kind wire.Kind) *extprocv3.ProcessingResponse {
	s.metrics.Failed(ErrorUnexpectedPhase)
	if !s.warnedPhase.Swap(true) {
		s.log.LogAttrs(ctx, slog.LevelWarn, "ext_proc filter sends a phase s3cors does not use; answering CONTINUE. Set processing_mode request_body_mode/response_body_mode NONE and request_trailer_mode/response_trailer_mode SKIP",
			slog.String("phase", kind.String()))
	}
	resp := &extprocv3.ProcessingResponse{}
	switch kind {
	case wire.KindRequestBody:
		resp.Response = &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{}}
	case wire.KindResponseBody:
		resp.Response = &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{}}
	case wire.KindRequestTrailers:
		resp.Response = &extprocv3.ProcessingResponse_RequestTrailers{RequestTrailers: &extprocv3.TrailersResponse{}}
	case wire.KindResponseTrailers:
		resp.Response = &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extprocv3.TrailersResponse{}}
	}
	return resp
}

func (s *Server) protocolError(ctx context.Context, code codes.Code, kind ErrorKind, format string, args ...any) error {
	err := status.Errorf(code, format, args...)
	s.metrics.Failed(kind)
	s.log.LogAttrs(ctx, slog.LevelWarn, "ext_proc protocol error", slog.String("code", code.String()), slog.String("error", status.Convert(err).Message()))
	return err
}

// requestHeaders decides the request and puts the answer in st.out. done says the stream
// needs nothing more.
//
// Streams that need nothing more (PassThrough, or Forward keeping the upstream's own CORS
// headers) get CONTINUE with the mode_override {response_header_mode: SKIP}, so that Envoy
// does not send the response headers. Every other field of the override is left at its
// default, so that it equals `{response_header_mode: SKIP}` in an allowed_override_modes list.
func (s *Server) requestHeaders(ctx context.Context, st *stream, hs []wire.Header) (done bool, err error) {
	req := &st.req
	if err := readRequest(hs, req, &st.scratch); err != nil {
		return false, s.protocolError(ctx, codes.InvalidArgument, ErrorMissingHeader, "%s", err.Error())
	}
	d := &st.dec
	if req.Method == "CONNECT" && req.Path == "" {
		// A CONNECT tunnel has no :path and is no S3 request. Every field is set, as Evaluate
		// sets them: the pooled stream's Decision still holds its previous request's, which
		// the decision line would otherwise report for this one.
		d.Outcome, d.Reason, d.Bucket, d.Key, d.Rule, d.HeaderSet = evaluator.PassThrough, evaluator.ReasonNotBucket, "", "", -1, -1
		d.Status, d.Headers, d.Body, d.StripUpstream = 0, nil, nil, false
	} else {
		live := s.policy.Load()
		if live == nil {
			s.metrics.Failed(ErrorNoPolicy)
			return false, status.Error(codes.Unavailable, "extproc: no configuration loaded")
		}
		live.Policy.Evaluate(req, d)
	}
	s.metrics.Decided(d)
	if s.log.Enabled(ctx, slog.LevelDebug) {
		s.logDecision(ctx, req, d)
	}

	switch {
	case d.Outcome == evaluator.Reply:
		st.immediateResponse()
		return true, nil
	case d.EditsResponse():
		st.out.SetStatic(wire.Continue)
		return false, nil
	default: // PassThrough, or a Forward that keeps the upstream's own CORS headers and sets none
		st.out.SetStatic(wire.ContinueSkip)
		return true, nil
	}
}

// logDecision writes the debug line for one decision: enough to trace a reply (its
// x-amz-request-id, as the client saw it, and its status) and to see why a preflight was
// denied (the Access-Control-Request-Method and -Headers the rules were matched against). A
// header the request did not carry is left out, so absent and empty stay apart.
func (s *Server) logDecision(ctx context.Context, req *evaluator.Request, d *evaluator.Decision) {
	attrs := make([]slog.Attr, 0, 16)
	attrs = append(attrs,
		slog.String("bucket", bounded(d.Bucket)), slog.String("origin", bounded(req.Origin)),
		slog.String("method", bounded(req.Method)), slog.String("path", bounded(withoutQuery(req.Path))))
	if req.HasRequestMethod {
		attrs = append(attrs, slog.String("access_control_request_method", bounded(req.RequestMethod)))
	}
	if req.HasRequestHeaders {
		attrs = append(attrs, slog.String("access_control_request_headers", bounded(req.RequestHeaders)))
	}
	attrs = append(attrs,
		slog.String("outcome", outcomeNames[d.Outcome]), slog.String("reason", d.Reason.String()),
		slog.Int("rule", d.Rule))
	if d.Outcome == evaluator.Reply {
		attrs = append(attrs, slog.Int("status", d.Status), slog.String("request_id", d.RequestID()))
	}
	if d.Ambiguity != evaluator.AmbiguityNone {
		attrs = append(attrs, slog.String("ambiguity", d.Ambiguity.String()), slog.String("authority", bounded(req.Authority)))
		if req.HasHost {
			attrs = append(attrs, slog.String("host", bounded(req.Host)))
		}
		if req.HasForwardedHost {
			attrs = append(attrs, slog.String("x_forwarded_host", bounded(req.ForwardedHost)))
		}
		if req.HasForwarded {
			attrs = append(attrs, slog.String("forwarded", bounded(req.Forwarded)))
		}
	}
	s.log.LogAttrs(ctx, slog.LevelDebug, "decision", attrs...)
}

// bounded returns v, or v cut as logcut cuts it and marked with how long it was.
func bounded(v string) string {
	shown, cut := logcut.Cut(v)
	if !cut {
		return v
	}
	return string(logcut.AppendMark([]byte(shown), len(v)))
}

// requestField returns the evaluator's field named by key (lower case), or RequestFields for
// none: a switch on the bytes, which converts nothing (TestRequestFieldNames holds it to the
// evaluator's names).
func requestField(key []byte) evaluator.RequestField {
	switch string(key) {
	case ":method":
		return evaluator.FieldMethod
	case ":authority":
		return evaluator.FieldAuthority
	case ":path":
		return evaluator.FieldPath
	case "host":
		return evaluator.FieldHost
	case "origin":
		return evaluator.FieldOrigin
	case "access-control-request-method":
		return evaluator.FieldRequestMethod
	case "access-control-request-headers":
		return evaluator.FieldRequestHeaders
	case "x-forwarded-host":
		return evaluator.FieldForwardedHost
	case "forwarded":
		return evaluator.FieldForwarded
	}
	return evaluator.RequestFields
}

// lowerKey returns key in lower case: key itself when it has no upper-case ASCII letter (Envoy
// sends lower-case keys), else a lower-case copy in buf when key is ASCII and fits, else nil
// (then bytes.ToLower, as strings.ToLower did for the typed messages, lowers its non-ASCII
// letters too).
func lowerKey(key []byte, buf *[64]byte) []byte {
	if !hasUpper(key) {
		return key
	}
	if len(key) > len(buf) {
		return nil
	}
	low := buf[:len(key)]
	for i, c := range key {
		switch {
		case c >= utf8.RuneSelf:
			return nil
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		low[i] = c
	}
	return low
}

// readRequest fills r from Envoy's request headers. A repeated header counts with its first
// value, except that a repeated :authority or host is reported (Request.RepeatedHost) and
// repeated X-Forwarded-Host and Forwarded values are joined by "," (Envoy joins the first, an
// inline header, itself; RFC 7239 reads Forwarded lines as one list). The values are
// gathered in scratch and turned into one string, which r's fields slice: one allocation
// whatever the number of headers.
func readRequest(hs []wire.Header, r *evaluator.Request, scratch *[]byte) error {
	var (
		spans    [evaluator.RequestFields][2]int
		seen     [evaluator.RequestFields]bool
		low      [64]byte
		repeated bool
	)
	buf := (*scratch)[:0]
	for _, h := range hs {
		// A key lowerKey leaves to bytes.ToLower (long, or not ASCII) is none of those read.
		f := requestField(lowerKey(h.Key, &low))
		if f == evaluator.RequestFields {
			continue
		}
		if seen[f] {
			switch f {
			case evaluator.FieldAuthority, evaluator.FieldHost:
				repeated = true
			case evaluator.FieldForwardedHost, evaluator.FieldForwarded:
				// Join the values at the end of buf; the first copy stays unused.
				sp := spans[f]
				if sp[1] != len(buf) {
					start := len(buf)
					buf = append(buf, buf[sp[0]:sp[1]]...)
					sp = [2]int{start, len(buf)}
				}
				buf = append(append(buf, ','), h.Value...)
				spans[f] = [2]int{sp[0], len(buf)}
			}
			continue
		}
		seen[f] = true
		spans[f] = [2]int{len(buf), len(buf) + len(h.Value)}
		buf = append(buf, h.Value...)
	}
	*scratch = buf
	var vals [evaluator.RequestFields]string
	if len(buf) > 0 {
		all := string(buf)
		for f := range evaluator.RequestFields {
			vals[f] = all[spans[f][0]:spans[f][1]]
		}
	}
	hasHost := seen[evaluator.FieldHost]
	if !seen[evaluator.FieldAuthority] && hasHost {
		// Envoy always sends :authority; a hand-written client may send host instead.
		vals[evaluator.FieldAuthority], seen[evaluator.FieldAuthority], hasHost = vals[evaluator.FieldHost], true, false
	}
	*r = evaluator.Request{}
	for f := range evaluator.RequestFields {
		if seen[f] {
			r.Set(f, vals[f])
		}
	}
	r.HasHost, r.RepeatedHost = hasHost, repeated
	switch {
	case r.Method == "":
		return errors.New("extproc: request headers lack :method")
	case !seen[evaluator.FieldAuthority]:
		return errors.New("extproc: request headers lack :authority")
	case !seen[evaluator.FieldPath] && r.Method != "CONNECT":
		return errors.New("extproc: request headers lack :path")
	}
	return nil
}

// withoutQuery drops the query string, which for a presigned URL carries a signature that is
// a bearer credential until it expires: logs must not hold it.
func withoutQuery(path string) string {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		return path[:i]
	}
	return path
}

func hasUpper[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// immediateResponse puts S3's reply for a preflight in st.out: status, headers and body, as an
// ImmediateResponse. Envoy sends it with sendLocalReply, which owns content-length (it sets
// it from the body, and drops it with the body empty; HTTP/1 then says "content-length: 0")
// and the hop-by-hop headers, so those are left to Envoy; see wireKey.
func (st *stream) immediateResponse() {
	d := &st.dec
	set := st.set[:0]
	for _, h := range d.Headers {
		if key, ok := wireKey(h.Name); ok {
			set = append(set, wire.SetHeader{Key: key, Value: h.Value})
		}
	}
	st.set = set
	// The typed message took the status as an envoy.type.v3.StatusCode, an int32.
	st.buf = wire.AppendImmediateResponse(st.buf[:0], int32(d.Status), set, d.Body, d.Reason.ReplyDetails())
	st.out.Set(st.buf)
}

// responseHeaders puts in st.out the mutation of the upstream's response headers hs: the
// Decision's response plan (evaluator.ResponsePlan) for a Decorate, or a Forward that strips
// the upstream's own CORS headers or sets S3's Vary ("vary": "always").
func (st *stream) responseHeaders(hs []wire.Header) {
	pl := st.dec.Response()
	remove, vary := st.remove[:0], st.vary[:0]
	var low [64]byte
	for _, u := range hs {
		key := lowerKey(u.Key, &low)
		if key == nil {
			key = bytes.ToLower(u.Key)
		}
		switch pl.Edit(string(key)) {
		case evaluator.RemoveHeader:
			if !contains(remove, string(key)) {
				remove = append(remove, string(key))
			}
		case evaluator.MergeHeader:
			vary = append(vary, string(u.Value))
		}
	}
	set := st.set[:0]
	for _, dh := range pl.Set {
		if key, ok := wireKey(dh.Name); ok {
			set = append(set, wire.SetHeader{Key: key, Value: dh.Value})
		}
	}
	if pl.Vary {
		set = append(set, wire.SetHeader{Key: "vary", Value: evaluator.MergeVary(vary)})
		if len(vary) > 0 {
			// Removal runs before the sets: every upstream Vary line goes and the merged
			// one replaces them, whatever the Envoy version's overwrite rules.
			remove = append(remove, "vary")
		}
	}
	st.set, st.remove, st.vary = set, remove, vary
	st.buf = wire.AppendResponseHeadersResponse(st.buf[:0], set, remove)
	st.out.Set(st.buf)
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// wireKey returns the lower-case name under which a header of S3's goes to Envoy, and false
// for headers Envoy owns on the way out: content-length (sendLocalReply computes it from the
// body) and the hop-by-hop headers (Envoy's connection manager strips them from every
// response and, on HTTP/1, answers a 400 local reply with "connection: close" itself).
func wireKey(name string) (string, bool) {
	switch name {
	case "Access-Control-Allow-Origin":
		return "access-control-allow-origin", true
	case "Access-Control-Allow-Methods":
		return "access-control-allow-methods", true
	case "Access-Control-Allow-Headers":
		return "access-control-allow-headers", true
	case "Access-Control-Expose-Headers":
		return "access-control-expose-headers", true
	case "Access-Control-Max-Age":
		return "access-control-max-age", true
	case "Access-Control-Allow-Credentials":
		return "access-control-allow-credentials", true
	case "Vary":
		return "vary", true
	case "Content-Type":
		return "content-type", true
	case "X-Amz-Request-Id", "x-amz-request-id":
		return "x-amz-request-id", true
	case "X-Amz-Id-2", "x-amz-id-2":
		return "x-amz-id-2", true
	case "Content-Length", "Connection":
		return "", false
	}
	key := name
	if hasUpper(key) {
		key = strings.ToLower(key)
	}
	switch key {
	case "content-length", "connection", "transfer-encoding", "keep-alive", "upgrade", "proxy-connection", "te", "trailer":
		return "", false
	}
	return key, true
}
