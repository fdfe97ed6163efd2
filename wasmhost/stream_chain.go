package wasmhost

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

func (f filterStatus) String() string { return enumString(statusNames[:], int(f), "filterStatus") }

// callbackKind is the shape of a stream callback, which decides how its raw answer maps to a
// filter status.
type callbackKind uint8

const (
	kindHeaders callbackKind = iota
	kindData
	kindTrailers
)

var callbackKindNames = [...]string{"headers", "data", "trailers"}

func (k callbackKind) String() string {
	return enumString(callbackKindNames[:], int(k), "callbackKind")
}

// callState is the filter-manager iteration a callback runs in; a local reply sent from it
// aborts that direction (decoder for request callbacks, encoder for response callbacks).
type callState uint8

const (
	callIdle callState = iota
	callDecoding
	callEncoding
)

var callStateNames = [...]string{"idle", "decoding", "encoding"}

func (c callState) String() string { return enumString(callStateNames[:], int(c), "callState") }

// direction is the callState of a callback on h.
func (h *half) direction() callState {
	if h.response {
		return callEncoding
	}
	return callDecoding
}

// convert maps a raw callback answer as ContextBase::convertVmCallResultTo*Status and Envoy's
// convertFilter*Status do. Headers: 0 and 2 continue, 3 stops all and buffers, anything else
// stops all with watermark (StopIteration is not allowed for 0.2.x by default). Data: 0, 1, 2
// map as named, anything larger is StopIterationNoBuffer. Trailers: 0 continues, else stops.
// A local reply sent during the callback forces a stop.
func convert(kind callbackKind, raw uint32, forcedStop bool) filterStatus {
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
func (s *Stream) checkFail(kind callbackKind) (filterStatus, bool) {
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

// run calls one stream callback as ContextBase::on*: CHECK_FAIL before and after, the call,
// the deferred actions; it returns the mapped status and whether the plugin was called.
func (s *Stream) run(kind callbackKind, name string, params ...uint64) (filterStatus, bool) {
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
	if h.response {
		name = "proxy_on_response_body"
	}
	prev := s.callState
	s.callState = h.direction()
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
	if h.response {
		name = "proxy_on_response_trailers"
	}
	prev := s.callState
	s.callState = h.direction()
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
	s.callState = callEncoding
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
