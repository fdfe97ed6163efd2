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
// This package is the library: [NewServer] is the ExternalProcessorServer, answering from the
// policy live in a [PolicyHolder] (swap it with [PolicyHolder.Store] at any time; a stream in
// flight keeps the policy it started with), built from a file or bytes with [LoadConfigFile]
// or [LoadConfig]. Register it in a grpc.Server built with [ServerCodecOption], which lets the
// server read requests and write answers as protobuf wire bytes (without it the server works
// the same, through gRPC's proto codec, at some CPU cost). It counts nothing itself: pass an
// [Observer] in [ServerOptions] to be told decisions, errors and latencies. It installs no
// signal handler, opens no listener and watches no file.
//
// The process `s3cors extproc` runs around it (listeners, gRPC health, Prometheus /metrics,
// the configuration file watched and reloaded, SIGHUP, a bounded graceful drain) is
// internal/extprocd.
//
// The Envoy-side settings this server is written for, and why, are in RATIONALE.md ("The
// Envoy settings we recommend").
//
// Where it sits: extproc is an adapter. It imports the evaluator (and gRPC and
// go-control-plane), never another adapter, wasmhost or its daemon; internal/extprocd
// serves it.
//
// # Protocol errors
//
// Each ends only its own stream, with a gRPC status, a warn line and an [ErrorKind] for the
// [Observer]; Envoy, failing closed, answers that request with status_on_error. A stream reset
// or cancelled by Envoy is not an error: clients go away all the time.
//
//	response_headers, a body or trailers before
//	request_headers; request_headers twice         FailedPrecondition (out_of_order)
//	request headers without :method, :authority
//	or :path                                       InvalidArgument (missing_header)
//	a message with no request type                 InvalidArgument (unknown_message)
//	a body or trailers after the request headers   CONTINUE, warned once (unexpected_phase)
//	observability_mode set                         stream closed, warned once (observability_mode)
//
// A CONNECT without :path passes through, and host stands in for a missing :authority.
//
// At debug level the server logs one line per decision (a reply's with its x-amz-request-id);
// the path is logged without its query and client values are cut at 256 bytes.
//
// # Wire codec
//
// The hot answers (a preflight's ImmediateResponse, the response-header mutation of an actual
// request, the two constant CONTINUEs) are written as protobuf wire bytes, and request headers
// are read from the received bytes, by extproc/internal/wire; its package comment says how,
// and how the bytes are held equal to protobuf-go's. The server's own tests hold every
// case-table answer to the typed messages it replaced (wire_test.go, FuzzWireEncoding).
package extproc
