package wasmhost

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Action is what Envoy's filter chain did with the data of one step.
type Action int

const (
	// Continue: the plugin let the data through; it went on to the upstream (request steps) or
	// to the client (response steps) and is in Result.
	Continue Action = iota
	// Stop: the plugin stopped iteration; Envoy holds the data (and may buffer more) until the
	// plugin continues the stream, which only a later callback (a tick) can do.
	Stop
	// Replied: the stream was answered with a local reply, in Result.Reply. The stream is
	// complete: the plugin's on_log, on_done and on_delete have run (unless the plugin holds
	// its own reply, see Reply.Held).
	Replied
	// Reset: the stream was reset (proxy_close_stream, or a local reply after the response
	// headers had gone to the client).
	Reset
)

// String returns the action's name.
func (a Action) String() string {
	switch a {
	case Continue:
		return "continue"
	case Stop:
		return "stop"
	case Replied:
		return "replied"
	case Reset:
		return "reset"
	}
	return "Action(" + strconv.Itoa(int(a)) + ")"
}

// Result is the outcome of one step of a Stream.
type Result struct {
	Action Action
	// Status is the Envoy filter status the plugin's answer was mapped to, e.g. "Continue",
	// "StopAllIterationAndWatermark", "StopIterationAndBuffer"; empty when the plugin was not
	// called (no such export, filter skipped, failed VM).
	Status string
	// Headers, Body and Trailers are what this step passed on: to the upstream for request
	// steps, to the client for response steps. Body may hold data buffered by earlier steps.
	Headers  Headers
	Body     []byte
	Trailers Headers
	// EndOfStream is set when what was passed on ended that direction.
	EndOfStream bool
	// Reply is the local reply, when Action is Replied.
	Reply *Reply
}

// Reply is a local reply as the client receives it.
type Reply struct {
	// Status is the HTTP status (200 for a gRPC request's reply, carried in grpc-status).
	Status int
	// Headers are the reply's headers after the plugin's own on_response_headers for it.
	Headers Headers
	// Body is the reply's body after the plugin's own on_response_body (none for HEAD).
	Body []byte
	// Details are the response code details, whitespace replaced by '_' ("wasm_fail_stream"
	// for a failed VM).
	Details string
	// GRPCStatus is the gRPC status the plugin gave (0..16), or -1 for none.
	GRPCStatus int
	// ViaFilterChain: the reply went through the filter chain, so the plugin saw it in its
	// response callbacks. Replies sent once the response had started go straight to the client.
	ViaFilterChain bool
	// Held: the plugin stopped iteration in a response callback for its own reply; Envoy holds
	// the reply until the plugin continues the response. Headers and Body are what has reached
	// the client so far.
	Held bool
}

// Stream drives one HTTP exchange through the plugin, callback by callback, as Envoy's filter
// manager does for a chain holding only this filter: RequestHeaders, then any RequestBody and
// RequestTrailers, then ResponseHeaders, ResponseBody, ResponseTrailers, then Done. Each step
// returns what passed on. A Stream is safe for use by one goroutine at a time; different
// Streams may be driven concurrently (callbacks into one worker VM are serialized).
type Stream struct {
	host *Host
	v    *vm          // nil: the filter has no VM (failed closed)
	cc   *callContext // the stream's context in v
	skip bool         // the filter is not in the chain (fail open after a VM failure)
	mu   sync.Mutex   // serializes steps when v is nil

	// Envoy Context state (source/extensions/common/wasm/context.cc).
	created          bool // in_vm_context_created_
	streamFailed     bool // stream_failed_
	failureReplySent bool // failure_local_reply_sent_
	destroyed        bool
	accessLog        bool
	endOfStream      bool

	req, resp half

	isHead, isGRPC bool
	callState      int  // 1 decoding, 2 encoding: where a local reply aborts the chain
	respStarted    bool // response headers exist (from the upstream or a local reply)
	respEncoded    bool // response headers went to the client
	decoderAborted bool
	encoderAborted bool

	reply       *Reply
	replyBuild  *Reply
	reset       bool
	finish      bool // the stream completed during the current step
	complete    bool // on_log/on_done/on_delete have run
	details     string
	filterState map[string][]byte

	step  *Result
	async Result
	wake  chan struct{}
}

// half is one direction of the stream as the plugin sees it.
type half struct {
	response bool
	headers  *headerMap
	trailers *headerMap
	// held*: the plugin's Context still points at the map/buffer (Envoy drops the pointer when
	// a callback answers Continue).
	holdHeaders, holdBody, holdTrailers bool
	body                                *[]byte // request_body_buffer_ / response_body_buffer_
	// buffering is the wasm Context's buffering_*_body_: the next body callback sees all
	// buffered data.
	buffering bool
	pending   []byte // data Envoy holds for this filter
	// stopped: iteration stopped at the plugin; stoppedAll: from a headers callback, so later
	// frames are buffered without callbacks until the plugin continues.
	stopped, stoppedAll bool
	limited             bool // the stop status buffers up to the buffer limit
	headersSent         bool
	eosIn               bool // the source ended this direction
	trailersIn          bool // trailers arrived while stopped
	eosSent             bool
}

func (h *half) heldHeaders() *headerMap {
	if h.holdHeaders {
		return h.headers
	}
	return nil
}

func (h *half) heldTrailers() *headerMap {
	if h.holdTrailers {
		return h.trailers
	}
	return nil
}

// trailersForWrite is getMap for trailers: Envoy creates them on demand from the last body
// callback of a direction.
func (h *half) trailersForWrite(eos bool) *headerMap {
	if h.trailers == nil && h.holdBody && eos && !h.eosSent {
		h.trailers = &headerMap{}
		if h.response {
			h.trailers.inline = inlineResponseTrailers
		}
		h.holdTrailers = true
	}
	return h.heldTrailers()
}

func (h *half) buffer() *wasmBuffer {
	if !h.holdBody || h.body == nil {
		return emptyBuffer
	}
	return &wasmBuffer{ref: h.body}
}

func (h *half) dropHeld() { h.holdHeaders, h.holdBody, h.holdTrailers = false, false, false }

// NewStream starts a stream on the next worker VM (round-robin). When that VM has failed, the
// failure policy decides: FailOpen skips the filter, FailClosed answers 503, FailReload first
// replaces the VM (see FailurePolicy).
func (h *Host) NewStream() *Stream {
	s := &Stream{host: h, filterState: map[string][]byte{}, wake: make(chan struct{}, 1), async: Result{Action: Stop}}
	s.req.response, s.resp.response = false, true
	if h.closed.Load() {
		return s
	}
	w := h.workers[int((h.next.Add(1)-1)%uint64(len(h.workers)))]
	v, skip := w.current(h)
	if skip {
		s.skip = true
		return s
	}
	if v == nil {
		return s
	}
	v.mu.Lock()
	if !v.failed {
		s.v = v
		s.cc = &callContext{id: v.allocContextID(), parentID: v.rootCtx.id, stream: s}
		v.contexts[s.cc.id] = s.cc
	}
	v.mu.Unlock()
	return s
}

func (s *Stream) lock() {
	if s.v != nil {
		s.v.mu.Lock()
		return
	}
	s.mu.Lock()
}

func (s *Stream) unlock() {
	if s.v != nil {
		s.v.mu.Unlock()
		return
	}
	s.mu.Unlock()
}

// ID is the stream's context id in its VM (0 when the filter has no VM).
func (s *Stream) ID() uint32 {
	if s.cc == nil {
		return 0
	}
	return s.cc.id
}

// vmFailed is ContextBase::isFailed.
func (s *Stream) vmFailed() bool { return s.v == nil || s.v.failed }

// begin opens a step; it returns false (and the terminal result) when the stream is over.
func (s *Stream) begin() (*Result, bool) {
	r := &Result{}
	if s.reply != nil && !s.reply.Held {
		r.Action, r.Reply = Replied, s.reply
		return r, false
	}
	if s.reset {
		r.Action = Reset
		return r, false
	}
	if s.complete {
		r.Action = Reset
		return r, false
	}
	s.step = r
	return r, true
}

// end closes a step: a stream answered or reset during it is completed (log, done, delete).
func (s *Stream) end(r *Result) Result {
	s.step = nil
	if s.reply != nil {
		r.Action, r.Reply = Replied, s.reply
	} else if s.reset {
		r.Action = Reset
	}
	if s.finish && !s.complete && (s.reply == nil || !s.reply.Held) {
		s.doneLocked()
	}
	return *r
}

// RequestHeaders delivers the request headers (Envoy's decodeHeaders): on_context_create(S, R)
// the first time, then on_request_headers(S, n, endOfStream) with n counting pseudo-headers.
// Keys are lower-cased and pseudo-headers moved first, as Envoy's codecs do.
func (s *Stream) RequestHeaders(headers Headers, endOfStream bool) Result {
	s.lock()
	defer s.unlock()
	r, ok := s.begin()
	if !ok {
		return *r
	}
	m := newHeaderMap(headers, inlineRequest)
	s.req.headers = m
	method, _ := m.get(":method")
	s.isHead = method == "HEAD"
	ct, _ := m.get("content-type")
	s.isGRPC = isGRPCContentType(ct)
	s.req.eosIn = endOfStream
	if s.skip {
		s.emit(false, m.h, nil, nil, endOfStream)
		return s.end(r)
	}
	s.callState = 1
	s.onCreate()
	s.req.holdHeaders = true
	s.endOfStream = endOfStream
	st, called := s.run(kindHeaders, "proxy_on_request_headers", s.headersParams(len(m.h), endOfStream)...)
	s.callState = 0
	if called {
		r.Status = st.String()
	}
	s.afterHeaders(&s.req, st)
	if st != fsContinue && !s.aborted(&s.req) {
		r.Action = Stop
	}
	return s.end(r)
}

// RequestBody delivers a request body chunk (decodeData): on_request_body(S, size, eos), where
// size is the chunk, or all data buffered so far when the plugin asked for buffering.
func (s *Stream) RequestBody(data []byte, endOfStream bool) Result {
	s.lock()
	defer s.unlock()
	r, ok := s.begin()
	if !ok {
		return *r
	}
	s.decodeData(data, endOfStream, r)
	return s.end(r)
}

// RequestTrailers delivers the request trailers (decodeTrailers): on_request_trailers(S, n).
func (s *Stream) RequestTrailers(trailers Headers) Result {
	s.lock()
	defer s.unlock()
	r, ok := s.begin()
	if !ok {
		return *r
	}
	s.req.trailers = newHeaderMap(trailers, nil)
	s.req.eosIn = true
	s.trailersStep(&s.req, r)
	return s.end(r)
}

// ResponseHeaders delivers the upstream's response headers (encodeHeaders):
// on_response_headers(S, n, endOfStream).
func (s *Stream) ResponseHeaders(headers Headers, endOfStream bool) Result {
	s.lock()
	defer s.unlock()
	r, ok := s.begin()
	if !ok {
		return *r
	}
	s.respStarted = true
	s.resp.headers = newHeaderMap(headers, inlineResponse)
	s.resp.eosIn = endOfStream
	s.encodeHeaders(r)
	return s.end(r)
}

// ResponseBody delivers an upstream response body chunk (encodeData): on_response_body.
func (s *Stream) ResponseBody(data []byte, endOfStream bool) Result {
	s.lock()
	defer s.unlock()
	r, ok := s.begin()
	if !ok {
		return *r
	}
	s.encodeData(data, endOfStream, r)
	return s.end(r)
}

// ResponseTrailers delivers the upstream's response trailers (encodeTrailers).
func (s *Stream) ResponseTrailers(trailers Headers) Result {
	s.lock()
	defer s.unlock()
	r, ok := s.begin()
	if !ok {
		return *r
	}
	s.resp.trailers = newHeaderMap(trailers, inlineResponseTrailers)
	s.resp.eosIn = true
	s.trailersStep(&s.resp, r)
	return s.end(r)
}

// Done ends the stream as Envoy does once it is complete or reset: the access-log phase
// (on_context_create first if the plugin never saw the stream, then on_log), then on_done and
// on_delete back to back. It is idempotent, and runs by itself after a local reply.
func (s *Stream) Done() {
	s.lock()
	defer s.unlock()
	s.doneLocked()
}

// Reply returns the stream's local reply, or nil.
func (s *Stream) Reply() *Reply {
	s.lock()
	defer s.unlock()
	return s.reply
}

// Wait blocks until the plugin continued a stopped stream from outside its callbacks (with
// proxy_set_effective_context and proxy_continue_stream from on_tick) and returns what that
// released, or until ctx ends (Result with Action Stop).
func (s *Stream) Wait(ctx context.Context) Result {
	for {
		s.lock()
		if s.async.Action != Stop || s.async.Headers != nil || s.async.Body != nil || s.async.Trailers != nil || s.async.EndOfStream || s.reply != nil || s.reset || s.complete {
			r := s.async
			s.async = Result{Action: Stop}
			switch {
			case s.reply != nil && !s.reply.Held:
				r.Action, r.Reply = Replied, s.reply
			case s.reset || (s.complete && r.Action == Stop):
				r.Action = Reset
			}
			s.unlock()
			return r
		}
		s.unlock()
		select {
		case <-ctx.Done():
			return Result{Action: Stop}
		case <-s.wake:
		}
	}
}

func (s *Stream) notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Stream) doneLocked() {
	if s.complete {
		return
	}
	s.complete = true
	if s.skip {
		return
	}
	// Context::log: the access-log phase, creating the in-VM context first if needed.
	if !s.created {
		s.onCreate()
	}
	s.accessLog = true
	if !s.vmFailed() && s.v.has("proxy_on_log") {
		s.v.callback(s.cc, "proxy_on_log", nil, uint64(s.cc.id))
	}
	s.accessLog = false
	// Context::onDestroy: on_done (its answer ignored for streams), then on_delete.
	if !s.destroyed && s.created {
		s.destroyed = true
		if !s.vmFailed() {
			s.v.callback(s.cc, "proxy_on_done", nil, uint64(s.cc.id))
		}
		if !s.vmFailed() {
			s.v.callback(s.cc, "proxy_on_delete", nil, uint64(s.cc.id))
		}
	}
	if s.v != nil {
		delete(s.v.contexts, s.cc.id)
	}
	s.notify()
}

// onCreate is ContextBase::onCreate: on_context_create(S, R) once; the in-VM context counts as
// created even when the VM has failed or does not export the callback.
func (s *Stream) onCreate() {
	if !s.created && !s.vmFailed() {
		s.created = true
		s.v.callback(s.cc, "proxy_on_context_create", nil, uint64(s.cc.id), uint64(s.cc.parentID))
	}
	s.created = true
}

// filterStatus is the Envoy filter status a callback's answer maps to.
type filterStatus int

const (
	fsContinue filterStatus = iota
	fsStopIteration
	fsStopAllBuffer
	fsStopAllWatermark
	fsStopIterationAndBuffer
	fsStopIterationAndWatermark
	fsStopIterationNoBuffer
)

var statusNames = [...]string{"Continue", "StopIteration", "StopAllIterationAndBuffer", "StopAllIterationAndWatermark", "StopIterationAndBuffer", "StopIterationAndWatermark", "StopIterationNoBuffer"}

func (f filterStatus) String() string { return statusNames[f] }

const (
	kindHeaders = iota
	kindData
	kindTrailers
)

// convert maps a raw callback answer as ContextBase::convertVmCallResultTo*Status and Envoy's
// convertFilter*Status do. Headers: 0 and 2 continue, 3 stops all and buffers, anything else
// stops all with watermark (StopIteration is not allowed for 0.2.x by default). Data: 0, 1, 2
// map as named, anything larger is StopIterationNoBuffer. Trailers: 0 continues, else stops.
// A local reply sent during the callback forces a stop.
func convert(kind int, raw uint32, forcedStop bool) filterStatus {
	switch kind {
	case kindHeaders:
		switch {
		case forcedStop || raw > 4 || raw == 1 || raw == 4:
			return fsStopAllWatermark
		case raw == 3:
			return fsStopAllBuffer
		}
		return fsContinue
	case kindData:
		switch {
		case forcedStop || raw >= 3:
			return fsStopIterationNoBuffer
		case raw == 1:
			return fsStopIterationAndBuffer
		case raw == 2:
			return fsStopIterationAndWatermark
		}
		return fsContinue
	}
	if forcedStop || raw >= 1 {
		return fsStopIteration
	}
	return fsContinue
}

// closedStatus is what CHECK_FAIL answers for a failed VM that does not fail open.
var closedStatus = [...]filterStatus{fsStopAllWatermark, fsStopIterationNoBuffer, fsStopIteration}

// checkFail is cpp-host's CHECK_FAIL: on a failed VM, fail open (Continue, only with the
// legacy fail_open: true, which is what PluginBase::fail_open_ mirrors) or fail the stream once
// (503 local reply) and stop.
func (s *Stream) checkFail(kind int) (filterStatus, bool) {
	if !s.vmFailed() {
		return fsContinue, false
	}
	if s.host.opts.FailurePolicy == FailOpenLegacy {
		return fsContinue, true
	}
	if !s.streamFailed {
		s.streamFailed = true
		s.failStream()
	}
	return closedStatus[kind], true
}

// failStream is Context::failStream: a 503 local reply with details wasm_fail_stream and gRPC
// UNAVAILABLE, once; the flag is set first so the reply's own encode callbacks skip the VM
// (Envoy PR #40166).
func (s *Stream) failStream() {
	if s.failureReplySent {
		return
	}
	s.failureReplySent = true
	grpc := 14
	s.sendLocalReply(503, nil, nil, &grpc, "wasm_fail_stream")
}

// run calls one stream callback as ContextBase::on*: CHECK_FAIL before and after, the call,
// the deferred actions; it returns the mapped status and whether the plugin was called.
func (s *Stream) run(kind int, name string, params ...uint64) (filterStatus, bool) {
	if st, failed := s.checkFail(kind); failed {
		return st, false
	}
	if !s.v.has(name) {
		return fsContinue, false
	}
	override, failed := fsContinue, false
	raw, _, forced := s.v.callback(s.cc, name, func() {
		override, failed = s.checkFail(kind)
	}, append([]uint64{uint64(s.cc.id)}, params...)...)
	if failed {
		return override, false
	}
	return convert(kind, uint32(raw), forced), true
}

// headersParams are a headers callback's arguments after the context id: ABI 0.1.0 has no
// end_of_stream argument.
func (s *Stream) headersParams(n int, eos bool) []uint64 {
	if s.host.abi == abi010 {
		return []uint64{uint64(n)}
	}
	return []uint64{uint64(n), b2u(eos)}
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// emit passes data on: upstream for the request half, to the client for the response half.
func (s *Stream) emit(response bool, headers Headers, body []byte, trailers Headers, eos bool) {
	r := s.step
	if r == nil {
		r = &s.async
		if r.Action == Stop {
			r.Action = Continue
		}
		defer s.notify()
	}
	h := &s.req
	if response {
		h = &s.resp
	}
	if headers != nil {
		r.Headers = headers.Clone()
		h.headersSent = true
		if response {
			s.respEncoded = true
		}
	}
	if len(body) > 0 {
		r.Body = append(r.Body, body...)
	}
	if trailers != nil {
		r.Trailers = trailers.Clone()
	}
	if eos {
		r.EndOfStream = true
		h.eosSent = true
	}
	if response && s.replyBuild != nil {
		if headers != nil {
			s.replyBuild.Headers = headers.Clone()
		}
		if !s.isHead {
			s.replyBuild.Body = append(s.replyBuild.Body, body...)
		}
		if eos {
			s.replyBuild.Held = false
			s.reply = s.replyBuild
			s.replyBuild = nil
			s.finish = true
		}
	}
	if response && eos && s.reply == nil {
		s.finish = true
	}
}

// afterHeaders applies a headers callback's status (Context::decodeHeaders/encodeHeaders and
// the filter manager): continue passes the headers on and drops the plugin's pointer; a stop
// holds them.
func (s *Stream) afterHeaders(h *half, st filterStatus) {
	if s.aborted(h) {
		return
	}
	if st == fsContinue {
		h.holdHeaders = false
		eos := h.eosIn && h.pending == nil && !h.trailersIn
		s.emit(h.response, h.headers.h, nil, nil, eos)
		return
	}
	h.stopped, h.stoppedAll = true, true
	h.limited = st == fsStopAllBuffer
}

// aborted reports whether a local reply or reset took over the direction.
func (s *Stream) aborted(h *half) bool {
	if s.reset || (s.reply != nil && !s.reply.Held) {
		return true
	}
	if h.response {
		return s.encoderAborted
	}
	return s.decoderAborted
}

// decodeData is Context::decodeData plus the filter manager's buffering.
func (s *Stream) decodeData(data []byte, eos bool, r *Result) {
	h := &s.req
	h.eosIn = eos
	if s.skip || (!s.created && !h.stoppedAll) {
		s.emit(false, nil, data, nil, eos)
		return
	}
	s.dataStep(h, data, eos, r)
}

// encodeData is Context::encodeData plus the filter manager's buffering.
func (s *Stream) encodeData(data []byte, eos bool, r *Result) {
	h := &s.resp
	h.eosIn = eos
	if s.skip || !s.created || s.failureReplySent {
		s.emit(true, nil, data, nil, eos)
		return
	}
	s.dataStep(h, data, eos, r)
}

// dataStep runs one body frame through the plugin.
func (s *Stream) dataStep(h *half, data []byte, eos bool, r *Result) {
	if h.stoppedAll {
		// Stopped from headers: Envoy buffers without calling the filter.
		h.pending = append(h.pending, data...)
		s.checkLimit(h)
		r.Action = Stop
		return
	}
	var exposed *[]byte
	if h.buffering {
		h.pending = append(h.pending, data...)
		exposed = &h.pending
	} else {
		chunk := append([]byte(nil), data...)
		exposed = &chunk
	}
	h.body, h.holdBody = exposed, true
	s.endOfStream = eos
	name := "proxy_on_request_body"
	prev := s.callState
	if h.response {
		name, s.callState = "proxy_on_response_body", 2
	} else {
		s.callState = 1
	}
	wasBuffering := h.buffering
	st, called := s.run(kindData, name, uint64(len(*exposed)), b2u(eos))
	s.callState = prev
	if called {
		r.Status = st.String()
	}
	h.buffering = false
	if s.aborted(h) {
		return
	}
	switch st {
	case fsContinue:
		h.holdBody = false
		out := h.pending
		if !wasBuffering {
			out = append(out, *exposed...)
		}
		h.pending, h.stopped = nil, false
		var tr Headers
		if h.trailers != nil && eos {
			// Trailers added by the plugin on the last frame follow the data.
			tr = h.trailers.h
			h.holdTrailers = false
		}
		s.emit(h.response, s.pendingHeaders(h), out, tr, eos && tr == nil)
		if tr != nil {
			s.emit(h.response, nil, nil, nil, true)
		}
	case fsStopIterationAndBuffer:
		if !wasBuffering {
			h.pending = append(h.pending, *exposed...)
		}
		h.buffering, h.stopped, h.limited = true, true, true
		s.checkLimit(h)
		r.Action = Stop
	case fsStopIterationAndWatermark:
		if !wasBuffering {
			h.pending = append(h.pending, *exposed...)
		}
		h.stopped, h.limited = true, false
		r.Action = Stop
	default:
		// StopIterationNoBuffer: the frame is neither passed on nor buffered.
		h.stopped = true
		r.Action = Stop
	}
}

// pendingHeaders returns the headers still to pass on before data (after a stop-all the
// headers wait for the continue).
func (s *Stream) pendingHeaders(h *half) Headers {
	if h.headersSent {
		return nil
	}
	return h.headers.h
}

// checkLimit answers a stream whose buffered body outgrew the buffer limit as Envoy does: 413
// "Payload Too Large" for a request, 500 "Internal Server Error" for a response.
func (s *Stream) checkLimit(h *half) {
	if !h.limited || len(h.pending) <= s.host.opts.BufferLimit {
		return
	}
	if h.response {
		s.sendLocalReply(500, []byte("Internal Server Error"), nil, nil, "response_payload_too_large")
		return
	}
	s.sendLocalReply(413, []byte("Payload Too Large"), nil, nil, "request_payload_too_large")
}

// trailersStep runs trailers through the plugin.
func (s *Stream) trailersStep(h *half, r *Result) {
	if s.skip || !s.created || (h.response && s.failureReplySent) {
		s.emit(h.response, s.pendingHeaders(h), h.pending, h.trailers.h, false)
		h.pending = nil
		s.emit(h.response, nil, nil, nil, true)
		return
	}
	if h.stoppedAll {
		h.trailersIn = true
		r.Action = Stop
		return
	}
	h.holdTrailers = true
	name := "proxy_on_request_trailers"
	prev := s.callState
	if h.response {
		name, s.callState = "proxy_on_response_trailers", 2
	} else {
		s.callState = 1
	}
	st, called := s.run(kindTrailers, name, uint64(len(h.trailers.h)))
	s.callState = prev
	if called {
		r.Status = st.String()
	}
	if s.aborted(h) {
		return
	}
	if st != fsContinue {
		h.trailersIn, h.stopped = true, true
		r.Action = Stop
		return
	}
	h.holdTrailers = false
	s.emit(h.response, s.pendingHeaders(h), h.pending, h.trailers.h, false)
	h.pending, h.stopped = nil, false
	s.emit(h.response, nil, nil, nil, true)
}

// encodeHeaders is Context::encodeHeaders for the response headers in s.resp.
func (s *Stream) encodeHeaders(r *Result) {
	h := &s.resp
	if s.skip || !s.created || s.failureReplySent {
		s.emit(true, h.headers.h, nil, nil, h.eosIn)
		return
	}
	h.holdHeaders = true
	s.endOfStream = h.eosIn
	prev := s.callState
	s.callState = 2
	st, called := s.run(kindHeaders, "proxy_on_response_headers", s.headersParams(len(h.headers.h), h.eosIn)...)
	s.callState = prev
	if called && r != nil {
		r.Status = st.String()
	}
	s.afterHeaders(h, st)
	if r != nil && st != fsContinue && !s.aborted(h) {
		r.Action = Stop
	}
}

// continueByPlugin is the deferred continueDecoding/continueEncoding of proxy_continue_stream.
func (s *Stream) continueByPlugin(response bool) {
	h := &s.req
	if response {
		h = &s.resp
	}
	if !h.stopped || s.aborted(h) || s.complete {
		return
	}
	h.stopped = false
	if h.stoppedAll {
		h.stoppedAll = false
		s.emit(h.response, s.pendingHeaders(h), nil, nil, h.eosIn && len(h.pending) == 0 && !h.trailersIn)
		// The filter's data callback runs now with what Envoy buffered meanwhile.
		if len(h.pending) > 0 || (h.eosIn && !h.trailersIn && !h.eosSent) {
			data := h.pending
			h.pending = nil
			if len(data) > 0 {
				r := s.step
				if r == nil {
					r = &s.async
				}
				s.dataStep(h, data, h.eosIn && !h.trailersIn, r)
			}
		}
		if h.trailersIn && !s.aborted(h) && !h.stoppedAll && !h.stopped {
			h.trailersIn = false
			r := s.step
			if r == nil {
				r = &s.async
			}
			s.trailersStep(h, r)
		}
		return
	}
	out := h.pending
	h.pending = nil
	h.holdBody = false
	var tr Headers
	if h.trailersIn {
		h.trailersIn = false
		h.holdTrailers = false
		tr = h.trailers.h
	}
	s.emit(h.response, s.pendingHeaders(h), out, tr, h.eosIn && tr == nil)
	if tr != nil {
		s.emit(h.response, nil, nil, nil, true)
	}
}

// resetByPlugin is the deferred resetStream of proxy_close_stream.
func (s *Stream) resetByPlugin() {
	if s.details == "" {
		s.details = "wasm_close_stream"
	}
	s.reset, s.finish = true, true
	s.notify()
}

// queueLocalReply defers a proxy_send_local_response until the VM call returns
// (Context::sendLocalResponse). Whitespace in details becomes '_'; a gRPC status outside
// 0..16 (e.g. -1) means none.
func (s *Stream) queueLocalReply(code uint32, body []byte, headers Headers, grpcStatus uint32, details string) {
	details = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\n', '\v', '\f', '\r':
			return '_'
		}
		return r
	}, details)
	var grpc *int
	if grpcStatus <= 16 {
		g := int(grpcStatus)
		grpc = &g
	}
	s.v.after = append(s.v.after, func() { s.sendLocalReply(int(code), body, headers, grpc, details) })
}

// sendLocalReply is DownstreamFilterManager::sendLocalReply: through the filter chain when no
// response has started, straight to the client when response headers exist but have not been
// sent, else a reset. A reply sent from a callback aborts that direction's iteration.
func (s *Stream) sendLocalReply(code int, body []byte, add Headers, grpc *int, details string) {
	switch s.callState {
	case 1:
		s.decoderAborted = true
	case 2:
		s.encoderAborted = true
	}
	s.details = details
	prep := s.prepareLocalReply(code, body, add, grpc)
	g := -1
	if grpc != nil {
		g = *grpc
	}
	switch {
	case !s.respStarted:
		s.replyViaChain(prep, g, details)
	case !s.respEncoded:
		// sendDirectLocalReply: bypasses the filters; replaces whatever response was on its way.
		s.respEncoded = true
		body := prep.body
		if s.isHead || prep.headersOnly {
			body = nil
		}
		s.replyBuild = nil
		s.reply = &Reply{Status: prep.status, Headers: prep.headers.h.Clone(), Body: body, Details: details, GRPCStatus: g}
		s.resp.headers = prep.headers
		s.resp.pending, s.resp.stopped, s.resp.stoppedAll = nil, false, false
		s.finish = true
		s.notify()
	default:
		s.reset, s.finish = true, true
		s.notify()
	}
}

type preparedReply struct {
	status      int
	headers     *headerMap
	body        []byte
	headersOnly bool
}

// prepareLocalReply is Http::Utility::prepareLocalReply with Envoy's default local reply
// config: ":status", then the plugin's headers (added, keys lower-cased), then for a body
// content-length (always set from the body) and content-type text/plain only when no
// content-type was given; with no body both are removed. A gRPC request gets a trailers-only
// reply: status 200, content-type application/grpc, grpc-status and grpc-message.
func (s *Stream) prepareLocalReply(code int, body []byte, add Headers, grpc *int) preparedReply {
	m := &headerMap{inline: inlineResponse}
	m.add(":status", strconv.Itoa(code))
	for _, kv := range add {
		m.add(kv[0], kv[1])
	}
	if s.isGRPC {
		m.setInline(":status", "200")
		m.setInline("content-type", "application/grpc")
		if _, ok := m.get("grpc-status"); !ok {
			st := httpToGRPC(code)
			if grpc != nil {
				st = *grpc
			}
			m.setInline("grpc-status", strconv.Itoa(st))
		}
		if len(body) > 0 && !s.isHead {
			m.setInline("grpc-message", percentEncode(body))
		}
		m.remove("content-length")
		return preparedReply{status: 200, headers: m, body: nil, headersOnly: true}
	}
	if len(body) > 0 {
		m.setInline("content-length", strconv.Itoa(len(body)))
		if _, ok := m.get("content-type"); !ok {
			m.setInline("content-type", "text/plain")
		}
	} else {
		m.remove("content-length")
		m.remove("content-type")
	}
	return preparedReply{status: code, headers: m, body: body, headersOnly: len(body) == 0 || s.isHead}
}

// setInline sets an O(1) header as Envoy's inline setters do: the first entry keeps its place
// with the new value and later ones go; absent, it is added.
func (m *headerMap) setInline(key, value string) {
	key = lowerASCII(key)
	for i, kv := range m.h {
		if kv[0] == key {
			m.h[i][1] = value
			rest := m.h[i+1:]
			n := 0
			for _, x := range rest {
				if x[0] != key {
					rest[n] = x
					n++
				}
			}
			m.h = m.h[:i+1+n]
			return
		}
	}
	m.add(key, value)
}

// replyViaChain encodes the reply through the filter chain (Utility::encodeLocalReply): the
// plugin's on_response_headers(S, n, eos) and, with a body, on_response_body(S, len, true).
func (s *Stream) replyViaChain(prep preparedReply, grpc int, details string) {
	s.respStarted = true
	s.replyBuild = &Reply{Status: prep.status, Details: details, GRPCStatus: grpc, ViaFilterChain: true, Held: true}
	// The request direction is over for the filter chain.
	s.req.stopped, s.req.stoppedAll, s.req.pending = false, false, nil
	s.resp = half{response: true, headers: prep.headers, eosIn: prep.headersOnly}
	prevStep := s.step
	if prevStep != nil {
		// What the reply sends goes to the reply, not to the step's upstream data.
		s.step = &Result{}
		defer func() { s.step = prevStep }()
	}
	build := s.replyBuild
	s.encodeHeaders(nil)
	if s.replyBuild != build || s.reset || s.encoderAborted && s.reply != nil && s.reply != build {
		return
	}
	if prep.headersOnly || !s.resp.headersSent {
		if !s.resp.headersSent {
			// The plugin holds its own reply's headers.
			build.Headers = s.resp.headers.h.Clone()
			s.reply = build
		}
		return
	}
	s.encodeData(prep.body, true, &Result{})
	if s.replyBuild == build {
		// The plugin stopped the body: the reply is held.
		s.reply = build
	}
}

// httpToGRPC is Grpc::Utility::httpToGrpcStatus.
func httpToGRPC(code int) int {
	switch code {
	case 400:
		return 13
	case 401:
		return 16
	case 403:
		return 7
	case 404:
		return 12
	case 429, 502, 503, 504:
		return 14
	}
	return 2
}

// percentEncode is Envoy's PercentEncoding::encode for grpc-message.
func percentEncode(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		if c < ' ' || c > '~' || c == '%' {
			sb.WriteString("%" + strings.ToUpper(strconv.FormatInt(int64(c)>>4, 16)) + strings.ToUpper(strconv.FormatInt(int64(c)&15, 16)))
			continue
		}
		sb.WriteByte(c)
	}
	return sb.String()
}

// isGRPCContentType is Grpc::Common::hasGrpcContentType.
func isGRPCContentType(ct string) bool {
	const g = "application/grpc"
	if !strings.HasPrefix(ct, g) {
		return false
	}
	return len(ct) == len(g) || ct[len(g)] == '+' || ct[len(g)] == ';'
}

// attribute answers the request.* and response.* properties Envoy's StreamActivation offers,
// from the maps the plugin can currently see (none once a callback let them go).
func (s *Stream) attribute(parts []string) ([]byte, wasmResult) {
	reqMap := s.req.heldHeaders()
	respMap := s.resp.heldHeaders()
	if s.accessLog {
		reqMap, respMap = s.req.headers, s.resp.headers
	}
	switch parts[0] {
	case "request":
		if len(parts) < 2 {
			return nil, resultNotFound
		}
		if parts[1] == "protocol" && len(parts) == 2 {
			return []byte("HTTP/1.1"), resultOk
		}
		if parts[1] == "time" && len(parts) == 2 {
			var b [8]byte
			le.PutUint64(b[:], uint64(time.Now().UnixNano()))
			return b[:], resultOk
		}
		if reqMap == nil {
			return nil, resultNotFound
		}
		get := func(k string) ([]byte, wasmResult) {
			v, ok := reqMap.get(k)
			if !ok || len(parts) != 2 {
				return nil, resultNotFound
			}
			return []byte(v), resultOk
		}
		switch parts[1] {
		case "path":
			return get(":path")
		case "host":
			return get(":authority")
		case "scheme":
			return get(":scheme")
		case "method":
			return get(":method")
		case "referer":
			return get("referer")
		case "useragent":
			return get("user-agent")
		case "id":
			return get("x-request-id")
		case "url_path", "query":
			p, ok := reqMap.get(":path")
			if !ok || len(parts) != 2 {
				return nil, resultNotFound
			}
			path, query, _ := strings.Cut(p, "?")
			if parts[1] == "query" {
				return []byte(query), resultOk
			}
			return []byte(path), resultOk
		case "headers":
			return headerAttribute(reqMap, parts[2:])
		}
	case "response":
		if len(parts) < 2 {
			return nil, resultNotFound
		}
		switch parts[1] {
		case "code_details":
			if s.details == "" || len(parts) != 2 {
				return nil, resultNotFound
			}
			return []byte(s.details), resultOk
		case "code":
			m := respMap
			if m == nil && s.resp.headers != nil && s.respEncoded {
				m = s.resp.headers
			}
			if m == nil || len(parts) != 2 {
				return nil, resultNotFound
			}
			v, _ := m.get(":status")
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, resultNotFound
			}
			var b [8]byte
			le.PutUint64(b[:], uint64(n))
			return b[:], resultOk
		case "headers":
			if respMap == nil {
				return nil, resultNotFound
			}
			return headerAttribute(respMap, parts[2:])
		}
	}
	return nil, resultNotFound
}

// headerAttribute is a header map property: the whole map as pairs, or one header's values
// joined with ",".
func headerAttribute(m *headerMap, rest []string) ([]byte, wasmResult) {
	switch len(rest) {
	case 0:
		buf := make([]byte, pairsSize(m.h))
		marshalPairs(m.h, buf)
		return buf, resultOk
	case 1:
		vals := m.h.Values(lowerASCII(rest[0]))
		if len(vals) == 0 {
			return nil, resultNotFound
		}
		return []byte(strings.Join(vals, ",")), resultOk
	}
	return nil, resultNotFound
}
