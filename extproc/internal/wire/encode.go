package wire

import (
	"slices"
	"sync"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The server writes its frequent answers (a preflight's ImmediateResponse, the CONTINUE to
// request headers, an actual request's response-header mutation) straight to protobuf wire
// bytes instead of building messages and marshalling them: S3's nine-header answer is some
// twenty nested messages, and building plus marshalling them cost more than deciding the
// request. Rare answers (body and trailer phases) keep the typed messages. The server's
// extproc/wire_test.go proves the bytes equal proto.Marshal's (deterministic) output for the same messages, for
// every case-table decision and for fuzzed ones; RATIONALE.md says why.
//
// Field numbers are those of the protobuf struct tags in the generated code of
// github.com/envoyproxy/go-control-plane/envoy v1.40.0; the file of each message is named.
// descriptor_test.go derives every one, with its type, from the generated descriptors.
// Every message is written in the order proto.Marshal writes it: by field number, except that
// a oneof's field comes last ("to preserve compatibility with historic wire output",
// google.golang.org/protobuf internal/impl/codec_message.go). Any order is valid protobuf;
// this one makes the bytes comparable with proto.Marshal's.
const (
	// envoy.service.ext_proc.v3.ProcessingResponse (service/ext_proc/v3/external_processor.pb.go)
	numResponseRequestHeaders    protowire.Number = 1 // request_headers HeadersResponse, oneof response
	numResponseResponseHeaders   protowire.Number = 2 // response_headers HeadersResponse, oneof response
	numResponseImmediateResponse protowire.Number = 7 // immediate_response ImmediateResponse, oneof response
	numResponseModeOverride      protowire.Number = 9 // mode_override ProcessingMode

	// envoy.service.ext_proc.v3.HeadersResponse (same file)
	numHeadersResponseResponse protowire.Number = 1 // response CommonResponse

	// envoy.service.ext_proc.v3.CommonResponse (same file)
	numCommonHeaderMutation protowire.Number = 2 // header_mutation HeaderMutation

	// envoy.service.ext_proc.v3.ImmediateResponse (same file)
	numImmediateStatus  protowire.Number = 1 // status envoy.type.v3.HttpStatus
	numImmediateHeaders protowire.Number = 2 // headers HeaderMutation
	numImmediateBody    protowire.Number = 3 // body bytes
	numImmediateDetails protowire.Number = 5 // details string

	// envoy.service.ext_proc.v3.HeaderMutation (same file)
	numMutationSetHeaders    protowire.Number = 1 // set_headers repeated envoy.config.core.v3.HeaderValueOption
	numMutationRemoveHeaders protowire.Number = 2 // remove_headers repeated string

	// envoy.type.v3.HttpStatus (type/v3/http_status.pb.go)
	numHTTPStatusCode protowire.Number = 1 // code envoy.type.v3.StatusCode (enum)

	// envoy.config.core.v3.HeaderValueOption (config/core/v3/base.pb.go)
	numOptionHeader       protowire.Number = 1 // header HeaderValue
	numOptionAppendAction protowire.Number = 3 // append_action HeaderAppendAction (enum)

	// envoy.config.core.v3.HeaderValue (same file)
	numHeaderKey      protowire.Number = 1 // key string
	numHeaderRawValue protowire.Number = 3 // raw_value bytes

	// envoy.extensions.filters.http.ext_proc.v3.ProcessingMode
	// (extensions/filters/http/ext_proc/v3/processing_mode.pb.go)
	numModeResponseHeaderMode protowire.Number = 2 // response_header_mode HeaderSendMode (enum)
)

// Enum values written by hand, from the same files.
const (
	appendOverwriteIfExistsOrAdd = 2 // HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
	headerSendModeSkip           = 2 // ProcessingMode_SKIP
)

var (
	// continueRequest is ProcessingResponse{request_headers: {}}: CONTINUE, response headers
	// wanted.
	continueRequest = []byte{tag(numResponseRequestHeaders, protowire.BytesType), 0}
	// continueSkip is ProcessingResponse{mode_override: {response_header_mode: SKIP},
	// request_headers: {}}: CONTINUE, and Envoy need not send the response headers.
	continueSkip = []byte{
		tag(numResponseModeOverride, protowire.BytesType), 2,
		tag(numModeResponseHeaderMode, protowire.VarintType), headerSendModeSkip,
		tag(numResponseRequestHeaders, protowire.BytesType), 0,
	}
)

// SetHeader is one header of an answer: the key as Envoy gets it (lower case; the server
// leaves out those Envoy owns), the value, and, once sizeHeaders has run, the encoded sizes of
// its HeaderValue and HeaderValueOption.
type SetHeader struct {
	Key, Value      string
	hvSize, optSize int
}

// Every field number above is below 16, so every tag is one byte: the field number shifted
// left three bits, or'ed with the wire type (protowire.EncodeTag).
func tag(num protowire.Number, typ protowire.Type) byte { return byte(num)<<3 | byte(typ) }

// appendVarint and sizeVarint take one byte, inline, for the lengths and enum values of
// nearly every answer.
func appendVarint(b []byte, v uint64) []byte {
	if v < 0x80 {
		return append(b, byte(v))
	}
	return protowire.AppendVarint(b, v)
}

func sizeVarint(v uint64) int {
	if v < 0x80 {
		return 1
	}
	return protowire.SizeVarint(v)
}

// The size and append helpers follow proto3's implicit presence: a scalar field holding its
// zero value (empty string or bytes, 0) is not written; a message field that is set is
// written even when empty; every element of a repeated field is written.

// sizeField is the size of a length-delimited field of n bytes: tag, length, content.
func sizeField(n int) int { return 1 + sizeVarint(uint64(n)) + n }

// sizeScalar is sizeField for a string or bytes scalar, absent when empty.
func sizeScalar(n int) int {
	if n == 0 {
		return 0
	}
	return sizeField(n)
}

// appendField writes the tag and length of a length-delimited field; its n bytes follow.
func appendField(b []byte, t byte, n int) []byte { return appendVarint(append(b, t), uint64(n)) }

// appendScalar writes a string or bytes scalar, nothing when empty.
func appendScalar[T string | []byte](b []byte, t byte, v T) []byte {
	if len(v) == 0 {
		return b
	}
	return append(appendField(b, t, len(v)), v...)
}

// sizeEnum and appendEnum write an enum scalar, absent when 0. proto encodes an enum (int32)
// as a varint of its value sign-extended to 64 bits.
func sizeEnum(v int32) int {
	if v == 0 {
		return 0
	}
	return 1 + sizeVarint(uint64(int64(v)))
}

func appendEnum(b []byte, t byte, v int32) []byte {
	if v == 0 {
		return b
	}
	return appendVarint(append(b, t), uint64(int64(v)))
}

// sizeHeaders records in each header of set the sizes of its HeaderValue{key, raw_value} and
// of its HeaderValueOption{header, append_action: OVERWRITE_IF_EXISTS_OR_ADD}, and returns
// the size of set as HeaderMutation.set_headers.
//
// Values go in raw_value, which is what Envoy reads (envoy.reloadable_features.
// send_header_raw_value, default since 1.27); Envoy rejects a HeaderValue carrying both value
// and raw_value. S3's headers are the answer and replace any value the header had, as a
// repeated Access-Control-Allow-Origin would make browsers refuse the response.
func sizeHeaders(set []SetHeader) int {
	n := 0
	for i := range set {
		h := &set[i]
		h.hvSize = sizeScalar(len(h.Key)) + sizeScalar(len(h.Value))
		h.optSize = sizeField(h.hvSize) + sizeEnum(appendOverwriteIfExistsOrAdd)
		n += sizeField(h.optSize)
	}
	return n
}

// sizeRemove is the size of remove as HeaderMutation.remove_headers.
func sizeRemove(remove []string) int {
	n := 0
	for _, key := range remove {
		n += sizeField(len(key))
	}
	return n
}

// appendMutation writes HeaderMutation{set_headers: set, remove_headers: remove}'s fields;
// sizeHeaders must have run on set.
func appendMutation(b []byte, set []SetHeader, remove []string) []byte {
	for i := range set {
		h := &set[i]
		b = appendField(b, tag(numMutationSetHeaders, protowire.BytesType), h.optSize)
		b = appendField(b, tag(numOptionHeader, protowire.BytesType), h.hvSize)
		b = appendScalar(b, tag(numHeaderKey, protowire.BytesType), h.Key)
		b = appendScalar(b, tag(numHeaderRawValue, protowire.BytesType), h.Value)
		b = appendEnum(b, tag(numOptionAppendAction, protowire.VarintType), appendOverwriteIfExistsOrAdd)
	}
	for _, key := range remove {
		b = appendField(b, tag(numMutationRemoveHeaders, protowire.BytesType), len(key))
		b = append(b, key...)
	}
	return b
}

// AppendImmediateResponse appends ProcessingResponse{immediate_response: {status: {code:
// status}, headers: {set_headers: set}, body, details}}. headers is left out when set is
// empty.
func AppendImmediateResponse(b []byte, status int32, set []SetHeader, body []byte, details string) []byte {
	statusSize := sizeEnum(status)
	size := sizeField(statusSize)
	mutation := 0
	if len(set) > 0 {
		mutation = sizeHeaders(set)
		size += sizeField(mutation)
	}
	size += sizeScalar(len(body)) + sizeScalar(len(details))

	b = slices.Grow(b, sizeField(size))
	b = appendField(b, tag(numResponseImmediateResponse, protowire.BytesType), size)
	b = appendField(b, tag(numImmediateStatus, protowire.BytesType), statusSize)
	b = appendEnum(b, tag(numHTTPStatusCode, protowire.VarintType), status)
	if len(set) > 0 {
		b = appendField(b, tag(numImmediateHeaders, protowire.BytesType), mutation)
		b = appendMutation(b, set, nil)
	}
	b = appendScalar(b, tag(numImmediateBody, protowire.BytesType), body)
	return appendScalar(b, tag(numImmediateDetails, protowire.BytesType), details)
}

// AppendResponseHeadersResponse appends ProcessingResponse{response_headers: {response:
// {header_mutation: {set_headers: set, remove_headers: remove}}}}: CONTINUE with the
// mutation; header_mutation is left out when there is nothing to set or remove.
func AppendResponseHeadersResponse(b []byte, set []SetHeader, remove []string) []byte {
	common, mutation := 0, 0
	if len(set) > 0 || len(remove) > 0 {
		mutation = sizeHeaders(set) + sizeRemove(remove)
		common = sizeField(mutation)
	}
	headers := sizeField(common)
	b = slices.Grow(b, sizeField(headers))
	b = appendField(b, tag(numResponseResponseHeaders, protowire.BytesType), headers)
	b = appendField(b, tag(numHeadersResponseResponse, protowire.BytesType), common)
	if common > 0 {
		b = appendField(b, tag(numCommonHeaderMutation, protowire.BytesType), mutation)
		b = appendMutation(b, set, remove)
	}
	return b
}

// Response is a ProcessingResponse already in wire form, what the server hands to
// SendMsg. Under [ServerCodecOption]'s codec the bytes go out as they are. Under any other
// proto codec (a grpc.Server built without the option) it is still a proto.Message that
// marshals to exactly those bytes: they are its unknown fields, and it has no other field
// set. So the server works, byte for byte the same, in any grpc.Server.
type Response struct {
	raw []byte
	// shared, when set, is raw as an immutable buffer slice the codec may send as it is.
	shared mem.BufferSlice
	msg    extprocv3.ProcessingResponse
	// attached says msg's unknown fields hold raw (ProtoReflect has run). They then keep raw's
	// buffer alive, so the next Set detaches them: a pooled stream that drops an oversized
	// buffer must not keep it through msg.
	attached bool
}

// ProtoReflect makes a Response a proto.Message (see the type's comment): the message with
// the bytes as its unknown fields. Only a codec other than [Codec] calls it, so the bytes are
// attached here rather than on every answer.
func (w *Response) ProtoReflect() protoreflect.Message {
	m := w.msg.ProtoReflect()
	m.SetUnknown(w.raw)
	w.attached = true
	return m
}

// Set makes raw the message. raw must not change until the message is sent.
func (w *Response) Set(raw []byte) {
	w.detach()
	w.raw, w.shared = raw, nil
}

// Bytes returns the message's wire bytes.
func (w *Response) Bytes() []byte { return w.raw }

// SetStatic makes a constant answer the message, sent with no copy.
func (w *Response) SetStatic(a *Constant) {
	w.detach()
	w.raw, w.shared = a.raw, a.shared
}

// detach drops the previous answer from msg's unknown fields, if ProtoReflect put it there.
func (w *Response) detach() {
	if w.attached {
		w.msg.ProtoReflect().SetUnknown(nil)
		w.attached = false
	}
}

// Constant is a constant answer, with the buffer slice the codec sends for it. A
// SliceBuffer's Ref and Free do nothing and gRPC only reads the bytes, so one slice serves
// every stream at once.
type Constant struct {
	raw    []byte
	shared mem.BufferSlice
}

func newConstant(raw []byte) *Constant {
	raw = raw[:len(raw):len(raw)]
	return &Constant{raw: raw, shared: mem.BufferSlice{mem.SliceBuffer(raw)}}
}

var (
	// Continue is CONTINUE to request headers, the response headers wanted.
	Continue = newConstant(continueRequest)
	// ContinueSkip is CONTINUE to request headers, and Envoy need not send the response
	// headers.
	ContinueSkip = newConstant(continueSkip)
)

// codec is gRPC's proto codec, except that a *Response goes out as the bytes it
// already is.
type codec struct {
	proto encoding.CodecV2
}

// Marshal copies a Response's bytes into a pooled buffer (gRPC may still be writing them
// after the stream's state is reused) or, for a constant answer, sends them as they are.
// Anything else is marshalled by the proto codec.
func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	w, ok := v.(*Response)
	if !ok {
		return c.proto.Marshal(v)
	}
	if w.shared != nil {
		return w.shared, nil
	}
	if len(w.raw) > AnswerBufferSize {
		return mem.BufferSlice{mem.Copy(w.raw, mem.DefaultBufferPool())}, nil
	}
	buf := answerBuffers.Get(len(w.raw))
	copy(*buf, w.raw)
	return mem.BufferSlice{mem.NewBuffer(buf, answerBuffers)}, nil
}

// AnswerBufferSize is the capacity of answerBuffers' buffers: S3's answer to an ordinary
// preflight is 400 to 700 bytes. It must exceed gRPC's pooling threshold (1 KiB), below which
// gRPC treats a buffer as garbage instead of returning it to its pool.
const AnswerBufferSize = 4 << 10

// answerBuffers recycles the buffers the codec copies answers into; gRPC returns each once
// the answer is written. gRPC's default pool would serve too, but it clears a whole 4 KiB
// buffer on every Get, and the codec overwrites what it uses.
var answerBuffers = new(bufferPool)

// bufferPool is a mem.BufferPool of AnswerBufferSize buffers.
type bufferPool struct{ pool sync.Pool }

// Get returns a buffer of length n <= AnswerBufferSize, its content unspecified.
func (p *bufferPool) Get(n int) *[]byte {
	if b, ok := p.pool.Get().(*[]byte); ok {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, AnswerBufferSize)
	return &b
}

// Put takes back a buffer of Get's.
func (p *bufferPool) Put(b *[]byte) {
	if cap(*b) == AnswerBufferSize {
		p.pool.Put(b)
	}
}

// Unmarshal reads a message into a Request from its wire bytes, and anything else with
// the proto codec.
func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	if w, ok := v.(*Request); ok {
		return w.unmarshal(data)
	}
	return c.proto.Unmarshal(data, v)
}

// Name is "proto": on the wire, the codec is gRPC's proto codec.
func (codec) Name() string { return grpcproto.Name }

// ServerCodecOption returns the grpc.ServerOption that lets a grpc.Server send the server's
// pre-encoded answers as they are (see Response) and hand it the requests' wire bytes (see
// Request): the codec of [Codec], for every service on that grpc.Server. extproc's
// ServerCodecOption is this one.
func ServerCodecOption() grpc.ServerOption { return grpc.ForceServerCodecV2(Codec()) }

// Codec is gRPC's proto codec, except that a *[Response] goes out as the bytes it already is
// and a *[Request] is handed the message's bytes. Every other message goes to gRPC's proto
// codec, so health and reflection services beside the ext_proc server work as before.
func Codec() encoding.CodecV2 { return codec{proto: encoding.GetCodecV2(grpcproto.Name)} }
