package wasmhost

import (
	"strconv"
	"strings"
)

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
	case callDecoding:
		s.decoderAborted = true
	case callEncoding:
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
