package wire

import (
	"errors"
	"fmt"
	"unicode/utf8"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The server reads the ProcessingRequests it receives straight from their wire bytes as well:
// decoding one into generated messages (some twenty of them, every header a message and two
// strings) cost more than deciding the request. It reads what it needs (which message it is,
// observability_mode, and the headers' keys and values) and steps over everything else.
// decode_test.go proves that it reads exactly what proto.Unmarshal reads, for every
// case-table message and for fuzzed bytes; RATIONALE.md says why.
//
// Field numbers from the generated code of github.com/envoyproxy/go-control-plane/envoy
// v1.40.0, as in encode.go.
const (
	// envoy.service.ext_proc.v3.ProcessingRequest (service/ext_proc/v3/external_processor.pb.go);
	// fields 2 to 7 are the oneof request.
	numRequestRequestHeaders    protowire.Number = 2  // request_headers HttpHeaders
	numRequestResponseTrailers  protowire.Number = 7  // response_trailers HttpTrailers
	numRequestObservabilityMode protowire.Number = 10 // observability_mode bool

	// envoy.service.ext_proc.v3.HttpHeaders (same file)
	numHTTPHeadersHeaders protowire.Number = 1 // headers envoy.config.core.v3.HeaderMap

	// envoy.config.core.v3.HeaderMap (config/core/v3/base.pb.go)
	numHeaderMapHeaders protowire.Number = 1 // headers repeated HeaderValue

	// envoy.config.core.v3.HeaderValue (same file); key and raw_value are in encode.go
	numHeaderValue protowire.Number = 2 // value string
)

// Kind is which message of the oneof request a ProcessingRequest carries.
type Kind uint8

// The kinds, in field-number order: kind k is field number k+1 (request_headers is 2).
const (
	KindNone Kind = iota
	KindRequestHeaders
	KindResponseHeaders
	KindRequestBody
	KindResponseBody
	KindRequestTrailers
	KindResponseTrailers
)

// String is the kind's field name in ProcessingRequest, "none" for none.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

var kindNames = [...]string{
	KindNone:             "none",
	KindRequestHeaders:   "request_headers",
	KindResponseHeaders:  "response_headers",
	KindRequestBody:      "request_body",
	KindResponseBody:     "response_body",
	KindRequestTrailers:  "request_trailers",
	KindResponseTrailers: "response_trailers",
}

// Header is one header of a request_headers or response_headers message: its key as sent,
// and its raw_value, or its value when raw_value is empty (older Envoys and other clients).
// Both point into the [Request]'s buffer, valid until its next RecvMsg.
type Header struct {
	Key, Value []byte
}

// Incoming is what the server reads of one ProcessingRequest.
type Incoming struct {
	Kind          Kind
	Observability bool     // observability_mode
	Headers       []Header // request_headers' or response_headers' headers
}

// fromMessage reads m, a message some other codec decoded.
func (in *Incoming) fromMessage(m *extprocv3.ProcessingRequest) {
	in.Kind, in.Observability, in.Headers = KindNone, m.GetObservabilityMode(), in.Headers[:0]
	var hs *extprocv3.HttpHeaders
	switch r := m.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		in.Kind, hs = KindRequestHeaders, r.RequestHeaders
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		in.Kind, hs = KindResponseHeaders, r.ResponseHeaders
	case *extprocv3.ProcessingRequest_RequestBody:
		in.Kind = KindRequestBody
	case *extprocv3.ProcessingRequest_ResponseBody:
		in.Kind = KindResponseBody
	case *extprocv3.ProcessingRequest_RequestTrailers:
		in.Kind = KindRequestTrailers
	case *extprocv3.ProcessingRequest_ResponseTrailers:
		in.Kind = KindResponseTrailers
	}
	for _, h := range hs.GetHeaders().GetHeaders() {
		value := h.GetRawValue()
		if len(value) == 0 {
			value = []byte(h.GetValue())
		}
		in.Headers = append(in.Headers, Header{Key: []byte(h.GetKey()), Value: value})
	}
}

// errInvalidUTF8 is proto.Unmarshal's complaint about a string field, here a header's key or
// value.
var errInvalidUTF8 = errors.New("extproc: request message: string field contains invalid UTF-8")

func wireError(n int) error {
	return fmt.Errorf("extproc: request message: %w", protowire.ParseError(n))
}

// errFieldNumber is proto.Unmarshal's complaint about a field number above 2^29-1.
var errFieldNumber = errors.New("extproc: request message: invalid field number")

// consumeTag is protowire.ConsumeTag refusing, as proto.Unmarshal does, the field numbers
// above protowire.MaxValidNumber that a tag varint can still spell (ConsumeTag refuses only 0
// and numbers past 2^31-1).
func consumeTag(b []byte) (protowire.Number, protowire.Type, int, error) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return 0, 0, 0, wireError(n)
	}
	if num > protowire.MaxValidNumber {
		return 0, 0, 0, errFieldNumber
	}
	return num, typ, n, nil
}

// parse reads the ProcessingRequest in b, which in.Headers then point into. It follows
// proto.Unmarshal: the last of the oneof's fields wins, and a field repeated on the wire merges
// (a second request_headers adds its headers to the first's); a known field with another wire
// type is an unknown field; every occurrence of a header's key or value must be valid UTF-8.
// Fields it does not read are stepped over as opaque values, so malformed content inside them
// (which no Envoy sends) goes unnoticed where proto.Unmarshal would refuse the whole message.
func (in *Incoming) parse(b []byte) error {
	in.Kind, in.Observability, in.Headers = KindNone, false, in.Headers[:0]
	for len(b) > 0 {
		num, typ, n, err := consumeTag(b)
		if err != nil {
			return err
		}
		b = b[n:]
		switch {
		case num >= numRequestRequestHeaders && num <= numRequestResponseTrailers && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return wireError(n)
			}
			b = b[n:]
			if kind := Kind(num - 1); kind != in.Kind {
				in.Kind, in.Headers = kind, in.Headers[:0]
			}
			if in.Kind == KindRequestHeaders || in.Kind == KindResponseHeaders {
				if err := in.parseHTTPHeaders(v); err != nil {
					return err
				}
			}
		case num == numRequestObservabilityMode && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return wireError(n)
			}
			b = b[n:]
			in.Observability = protowire.DecodeBool(v)
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return wireError(n)
			}
			b = b[n:]
		}
	}
	return nil
}

// parseHTTPHeaders reads an HttpHeaders message, and the HeaderMap in it.
func (in *Incoming) parseHTTPHeaders(b []byte) error {
	return eachField(b, numHTTPHeadersHeaders, func(m []byte) error {
		return eachField(m, numHeaderMapHeaders, in.parseHeaderValue)
	})
}

// parseHeaderValue reads one HeaderValue; the last occurrence of each field wins.
func (in *Incoming) parseHeaderValue(b []byte) error {
	var key, value, raw []byte
	for len(b) > 0 {
		num, v, rest, err := bytesField(b, numHeaderKey, numHeaderRawValue)
		if err != nil {
			return err
		}
		b = rest
		switch num {
		case 0:
			continue
		case numHeaderKey:
			key = v
		case numHeaderValue:
			value = v
		case numHeaderRawValue:
			raw = v
			continue
		}
		if !utf8.Valid(v) {
			return errInvalidUTF8
		}
	}
	if len(raw) == 0 {
		raw = value
	}
	in.Headers = append(in.Headers, Header{Key: key, Value: raw})
	return nil
}

// bytesField reads the next field of the message b. A length-delimited field numbered lo to
// hi gives its number and content; any other field is stepped over, and num is 0 (no field
// has that number). rest is b after the field.
func bytesField(b []byte, lo, hi protowire.Number) (num protowire.Number, v, rest []byte, err error) {
	num, typ, n, err := consumeTag(b)
	if err != nil {
		return 0, nil, nil, err
	}
	b = b[n:]
	if num < lo || num > hi || typ != protowire.BytesType {
		n := protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return 0, nil, nil, wireError(n)
		}
		return 0, nil, b[n:], nil
	}
	v, n = protowire.ConsumeBytes(b)
	if n < 0 {
		return 0, nil, nil, wireError(n)
	}
	return num, v, b[n:], nil
}

// eachField calls fn with the content of every occurrence of the message field num in the
// message b, and steps over every other field.
func eachField(b []byte, num protowire.Number, fn func([]byte) error) error {
	for len(b) > 0 {
		n, v, rest, err := bytesField(b, num, num)
		if err != nil {
			return err
		}
		b = rest
		if n == 0 {
			continue
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	return nil
}

// Request is what the server hands to RecvMsg. Under [ServerCodecOption]'s codec, its
// Unmarshal copies the message's bytes into buf and parses them into in. Under any other proto
// codec, Request is a proto.Message (a ProcessingRequest) that the codec decodes into msg;
// parsed then stays false and the server reads msg instead.
type Request struct {
	buf    []byte
	parsed bool
	in     Incoming
	msg    extprocv3.ProcessingRequest
}

// ProtoReflect makes a Request a proto.Message (see the type's comment).
func (w *Request) ProtoReflect() protoreflect.Message { return w.msg.ProtoReflect() }

// unmarshal copies data (which gRPC frees once the codec returns) and parses it.
func (w *Request) unmarshal(data mem.BufferSlice) error {
	w.buf = w.buf[:0]
	for _, b := range data {
		w.buf = append(w.buf, b.ReadOnlyData()...)
	}
	w.parsed = true
	return w.in.parse(w.buf)
}

// Prepare readies w for the next RecvMsg: what the last one parsed is forgotten, so that a
// message another codec decodes into w is read from that message.
func (w *Request) Prepare() { w.parsed = false }

// Received returns what was read by the last RecvMsg into w.
func (w *Request) Received() *Incoming {
	if !w.parsed {
		w.in.fromMessage(&w.msg)
	}
	return &w.in
}

// Trim makes w ready for a pool: no header kept pointing into its buffer or into a message,
// and neither a header list longer than maxHeaders nor a buffer larger than maxBuffer kept.
func (w *Request) Trim(maxHeaders, maxBuffer int) {
	clear(w.in.Headers[:cap(w.in.Headers)])
	w.in.Headers = w.in.Headers[:0]
	if cap(w.in.Headers) > maxHeaders {
		w.in.Headers = nil
	}
	if !w.parsed {
		w.msg.Reset()
	}
	if cap(w.buf) > maxBuffer {
		w.buf = nil
	}
}
