package wasmhost

import (
	"context"
	"strconv"
	"sync"
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

var actionNames = [...]string{"continue", "stop", "replied", "reset"}

// String returns the action's name.
func (a Action) String() string { return enumString(actionNames[:], int(a), "Action") }

// enumString names v from names, or spells it typ(v) past them.
func enumString(names []string, v int, typ string) string {
	if v >= 0 && v < len(names) {
		return names[v]
	}
	return typ + "(" + strconv.Itoa(v) + ")"
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
	callState      callState // where a local reply aborts the chain
	respStarted    bool      // response headers exist (from the upstream or a local reply)
	respEncoded    bool      // response headers went to the client
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
	s.callState = callDecoding
	s.onCreate()
	s.req.holdHeaders = true
	s.endOfStream = endOfStream
	st, called := s.run(kindHeaders, "proxy_on_request_headers", s.headersParams(len(m.h), endOfStream)...)
	s.callState = callIdle
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
