// Package extproc serves s3cors as an Envoy external processor: an ext_proc gRPC server
// (envoy.service.ext_proc.v3.ExternalProcessor) that gives exactly the answers of the s3cors
// wasm filter, for users who would rather run a service than load a module, or whose Envoy has
// no Wasm runtime.
//
// Per HTTP request Envoy opens one stream. On the request headers the server evaluates the
// request with the live [evaluator.Policy]:
//
//   - a preflight is answered at once with an ImmediateResponse carrying S3's status, headers and
//     XML body; the request never reaches the store;
//   - an actual request that a rule matches (or whose upstream Access-Control-* headers must be
//     stripped) continues, and the server asks to see the response headers, which it then
//     mutates: upstream Access-Control-* removed, S3's headers set, Vary merged;
//   - anything else continues untouched, and the server tells Envoy, through mode_override, not
//     to send it the response headers at all.
//
// The server never asks for bodies or trailers.
//
// [Run] is the whole process as `s3cors extproc` runs it: configuration loaded from a JSON or
// YAML file and reloaded on change or SIGHUP by atomic swap (an invalid file keeps the last good
// configuration live), gRPC health, Prometheus metrics, structured logs and a bounded graceful
// drain on shutdown. [NewServer] is the ExternalProcessorServer alone, for embedding; register
// it in a grpc.Server built with [ServerCodecOption], which lets the server read requests and
// write answers as protobuf wire bytes (without it the server works the same, through gRPC's
// proto codec, at some CPU cost).
//
// The Envoy-side settings this server is written for are in RATIONALE.md, section "ext_proc".
//
// # Wire codec
//
// The hot answers (a preflight's ImmediateResponse, the response-header mutation of an actual
// request, the two constant CONTINUEs) are written as protobuf wire bytes (wire.go), and request
// headers are read from the received bytes (wire_request.go): which oneof member it is,
// observability_mode, and each header's key and raw_value (or value); everything else is stepped
// over. [ServerCodecOption] installs a codec named "proto" that sends a *wireResponse as its bytes,
// copied into a pooled 4 KiB buffer that gRPC frees once written (constant answers are shared
// without a copy), and hands a *wireRequest the message's bytes; every other message goes to
// gRPC's proto codec. Without the codec a wireResponse is a proto.Message whose unknown fields
// are its bytes and a wireRequest a ProcessingRequest, so any proto codec gives the same wire.
// A pooled stream drops buffers over 16 KiB and header lists over 256 entries when it is reused.
//
// Equivalence is tested, not assumed: the typed builders kept in wire_test.go are the reference;
// for every case-table decision and FuzzWireEncoding the bytes unmarshal proto.Equal to the typed
// message and equal deterministic marshalling byte for byte (fields are written in protobuf-go's
// order); FuzzWireRequest and TestWireRequestShapes hold the parse to proto.Unmarshal (merges,
// oneof switches, unknown fields, non-minimal varints, UTF-8 checks on keys and value); and
// TestWireFieldsMatchDescriptors derives every field number, type, cardinality and enum value from
// go-control-plane's generated descriptors.
package extproc
