package wasmhost

// calloutCalls: HTTP and gRPC calls, foreign functions and DNS. The host has no clusters, so
// every call names an unknown cluster; only the argument checks run.
var calloutCalls = map[string]proxyImpl{
	"proxy_http_call": func(a *hostArgs) wasmResult {
		a.bytes() // upstream
		a.bytes() // headers
		a.bytes() // body
		a.bytes() // trailers
		a.u32()   // timeout
		if a.putU32(0) != resultOk {
			return a.res
		}
		// Context::httpCall: a negative timeout and an unknown cluster are both BadArgument.
		return resultBadArgument
	},
	// An unknown cluster name is a ParseFailure (Context::grpcCall).
	"proxy_grpc_call": func(a *hostArgs) wasmResult {
		for range 5 { // service, service name, method, initial metadata, message
			a.bytes()
		}
		if !a.ok() {
			return a.res
		}
		return resultParseFailure
	},
	"proxy_grpc_stream": func(a *hostArgs) wasmResult {
		for range 4 { // service, service name, method, initial metadata
			a.bytes()
		}
		if !a.ok() {
			return a.res
		}
		return resultParseFailure
	},
	"proxy_grpc_cancel": grpcToken,
	"proxy_grpc_close":  grpcToken,
	"proxy_grpc_send": func(a *hostArgs) wasmResult {
		token := a.u32()
		a.bytes() // message
		if !a.ok() {
			return a.res
		}
		if token&0x3 != 2 {
			return resultBadArgument
		}
		return resultNotFound
	},

	// Only clear_route_cache (Envoy >= 1.33) is emulated, as a no-op; the others Envoy
	// registers (compress, verify_signature, ...) answer NotFound here.
	"proxy_call_foreign_function": func(a *hostArgs) wasmResult {
		name := a.string()
		a.bytes() // arguments
		if !a.ok() {
			return a.res
		}
		if name != "clear_route_cache" {
			return resultNotFound
		}
		for range 2 { // where to store the result's pointer and size; 0 for none
			if ptr := a.u32(); ptr != 0 && !a.v.putU32(ptr, 0) {
				return resultInvalidMemAccess
			}
		}
		return resultOk
	},
	// There is no DNS resolver behind the host.
	"envoy_resolve_dns": func(a *hostArgs) wasmResult { return resultInternalFailure },
}

// grpcToken answers cancel and close: a call token (low bits 1) or a stream token (2) is
// unknown, anything else is not a token.
func grpcToken(a *hostArgs) wasmResult {
	switch a.u32() & 0x3 {
	case 1, 2:
		return resultNotFound
	}
	return resultBadArgument
}
