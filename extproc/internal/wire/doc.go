// Package wire is the ext_proc server's protobuf codec: it writes the server's hot answers as
// protobuf wire bytes and reads request headers from the bytes received, instead of building
// and parsing go-control-plane's generated messages, which cost more than deciding the
// request.
//
// Answers: [AppendImmediateResponse] (a preflight's reply) and
// [AppendResponseHeadersResponse] (the response-header mutation of an actual request) write a
// ProcessingResponse; [Continue] and [ContinueSkip] are the two constant CONTINUEs. A
// [Response] holds the bytes for SendMsg. Requests: a [Request] is the RecvMsg target;
// [Request.Received] says which oneof member the message is, its observability_mode, and each
// header's key and raw_value (or value); everything else is stepped over.
//
// [ServerCodecOption] installs [Codec], named "proto": it sends a *Response as its bytes,
// copied into a pooled 4 KiB buffer that gRPC frees once written (constant answers are shared
// without a copy), and hands a *Request the message's bytes; every other message goes to
// gRPC's proto codec. Without it a Response is a proto.Message whose unknown fields are its
// bytes and a Request a ProcessingRequest, so any proto codec gives the same wire.
//
// Equivalence is tested, not assumed. The bytes equal deterministic proto.Marshal output,
// field order included (protobuf-go's: by number, a oneof last): here for the constants, and in
// extproc for every case-table decision and FuzzWireEncoding, against typed builders kept as
// the reference. FuzzWireRequest and TestWireRequestShapes hold the parse to proto.Unmarshal
// (merges, oneof switches, unknown fields, non-minimal varints, UTF-8 checks on keys and
// value), and TestWireFieldsMatchDescriptors derives every field number, type, cardinality and
// enum value from go-control-plane's generated descriptors. RATIONALE.md says why the server
// does this at all.
//
// Where it sits: internal to extproc, which alone may import it; it imports protobuf-go,
// gRPC's encoding and go-control-plane's generated types, nothing else of this repository.
package wire
