package wasmhost

import "github.com/tetratelabs/wazero/api"

// Proxy-Wasm ABI numbers as Envoy uses them (spec/proxy-wasm-envoy.md §1.5). They are the
// contract with the guest, so they are spelled out rather than derived.

// wasmResult is the status every proxy_* hostcall returns.
type wasmResult uint32

const (
	resultOk                  wasmResult = 0
	resultNotFound            wasmResult = 1
	resultBadArgument         wasmResult = 2
	resultSerializationFailed wasmResult = 3
	resultParseFailure        wasmResult = 4
	resultInvalidMemAccess    wasmResult = 6
	resultInternalFailure     wasmResult = 10
	resultUnimplemented       wasmResult = 12
)

// Header map types (WasmHeaderMapType, MAX 7).
const (
	mapRequestHeaders          = 0
	mapRequestTrailers         = 1
	mapResponseHeaders         = 2
	mapResponseTrailers        = 3
	mapGrpcInitialMetadata     = 4
	mapGrpcTrailingMetadata    = 5
	mapHTTPCallResponseHeaders = 6
	mapHTTPCallResponseTrailer = 7
	mapMax                     = 7
)

// Buffer types (WasmBufferType, MAX 8).
const (
	bufferRequestBody      = 0
	bufferResponseBody     = 1
	bufferDownstreamData   = 2
	bufferUpstreamData     = 3
	bufferHTTPCallResponse = 4
	bufferGrpcReceive      = 5
	bufferVMConfiguration  = 6
	bufferPluginConfig     = 7
	bufferCallData         = 8
	bufferMax              = 8
)

// Stream types (WasmStreamType, MAX 3).
const (
	streamRequest    = 0
	streamResponse   = 1
	streamDownstream = 2
	streamUpstream   = 3
	streamMax        = 3
)

// Metric types and Envoy's id scheme: the type lives in the low two bits, ids step by 4.
const (
	metricCounter   = 0
	metricGauge     = 1
	metricHistogram = 2
	metricMax       = 2

	metricTypeMask    = 0x3
	metricIDIncrement = 0x4
)

// WASI errno values Envoy returns (§1.5).
const (
	errnoSuccess    = 0
	errnoBadf       = 8
	errnoNotDir     = 20
	errnoFault      = 21
	errnoInval      = 28
	errnoNoent      = 44
	errnoNosys      = 52
	errnoNotsup     = 58
	errnoNotCapable = 76
)

// abiVersion is the Proxy-Wasm ABI a module declares with its marker export.
type abiVersion int

const (
	abiUnknown abiVersion = iota
	abi010
	abi020
	abi021
)

// String is the marker's version, e.g. "0.2.1".
func (v abiVersion) String() string {
	switch v {
	case abi010:
		return "0.1.0"
	case abi020:
		return "0.2.0"
	case abi021:
		return "0.2.1"
	}
	return "unknown"
}

// abiMarkers maps marker export names to versions, as cpp-host's BytecodeUtil::getAbiVersion.
var abiMarkers = map[string]abiVersion{
	"proxy_abi_version_0_1_0": abi010,
	"proxy_abi_version_0_2_0": abi020,
	"proxy_abi_version_0_2_1": abi021,
}

// signature is a wasm function type.
type signature struct {
	params  []api.ValueType
	results []api.ValueType
}

const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// words is n i32 parameters (Envoy's Word on wasm32).
func words(n int) []api.ValueType {
	p := make([]api.ValueType, n)
	for i := range p {
		p[i] = i32
	}
	return p
}

// voidCall and wordCall are cpp-host's WasmCallVoid<n> and WasmCallWord<n>.
func voidCall(n int) signature { return signature{params: words(n)} }
func wordCall(n int) signature { return signature{params: words(n), results: []api.ValueType{i32}} }

// exportSpec is one guest export Envoy looks up in WasmBase::getFunctions (in this order) and
// checks strictly against its signature.
type exportSpec struct {
	name string
	sig  signature
}

// startExports returns the start functions Envoy looks up (WasmBase::getFunctions), in order:
// _initialize and then main and (from cpp-host #500, Envoy 1.39) __main_void, or _start when
// there is no _initialize.
func startExports(p *profileSpec, hasInitialize bool) []exportSpec {
	if !hasInitialize {
		return []exportSpec{{"_start", voidCall(0)}}
	}
	out := []exportSpec{{"_initialize", voidCall(0)}, {"main", wordCall(2)}}
	if p.mainVoid {
		out = append(out, exportSpec{"__main_void", wordCall(0)})
	}
	return out
}

// callbackExports returns the callbacks Envoy looks up after the allocator, in its order
// (FOR_ALL_MODULE_FUNCTIONS, then the ABI-specific ones, then Envoy's own).

func callbackExports(abi abiVersion) []exportSpec {
	var out []exportSpec
	out = append(out,
		exportSpec{"proxy_validate_configuration", wordCall(2)},
		exportSpec{"proxy_on_vm_start", wordCall(2)},
		exportSpec{"proxy_on_configure", wordCall(2)},
		exportSpec{"proxy_on_tick", voidCall(1)},
		exportSpec{"proxy_on_context_create", voidCall(2)},
		exportSpec{"proxy_on_new_connection", wordCall(1)},
		exportSpec{"proxy_on_downstream_data", wordCall(3)},
		exportSpec{"proxy_on_upstream_data", wordCall(3)},
		exportSpec{"proxy_on_downstream_connection_close", voidCall(2)},
		exportSpec{"proxy_on_upstream_connection_close", voidCall(2)},
		exportSpec{"proxy_on_request_body", wordCall(3)},
		exportSpec{"proxy_on_request_trailers", wordCall(2)},
		exportSpec{"proxy_on_request_metadata", wordCall(2)},
		exportSpec{"proxy_on_response_body", wordCall(3)},
		exportSpec{"proxy_on_response_trailers", wordCall(2)},
		exportSpec{"proxy_on_response_metadata", wordCall(2)},
		exportSpec{"proxy_on_http_call_response", voidCall(5)},
		exportSpec{"proxy_on_grpc_receive", voidCall(3)},
		exportSpec{"proxy_on_grpc_close", voidCall(3)},
		exportSpec{"proxy_on_grpc_receive_initial_metadata", voidCall(3)},
		exportSpec{"proxy_on_grpc_receive_trailing_metadata", voidCall(3)},
		exportSpec{"proxy_on_queue_ready", voidCall(2)},
		exportSpec{"proxy_on_done", wordCall(1)},
		exportSpec{"proxy_on_log", voidCall(1)},
		exportSpec{"proxy_on_delete", voidCall(1)},
	)
	if abi == abi010 {
		out = append(out,
			exportSpec{"proxy_on_request_headers", wordCall(2)},
			exportSpec{"proxy_on_response_headers", wordCall(2)})
	} else {
		out = append(out,
			exportSpec{"proxy_on_request_headers", wordCall(3)},
			exportSpec{"proxy_on_response_headers", wordCall(3)},
			exportSpec{"proxy_on_foreign_function", voidCall(3)})
	}
	// Envoy's own extensions (source/extensions/common/wasm/wasm.cc getFunctions).
	out = append(out,
		exportSpec{"envoy_on_resolve_dns", voidCall(3)},
		exportSpec{"envoy_on_stats_update", voidCall(2)})
	return out
}

// hostFunc is one function Envoy registers for the guest to import.
type hostFunc struct {
	module string
	name   string
	sig    signature
}

// envHostFuncs returns the env.* functions cpp-host registers for an ABI version
// (WasmBase::registerCallbacks, FOR_ALL_HOST_FUNCTIONS + ABI-specific ones) plus Envoy's.
func envHostFuncs(abi abiVersion) []hostFunc {
	f := func(name string, sig signature) hostFunc { return hostFunc{"env", name, sig} }
	i32i64 := signature{params: []api.ValueType{i32, i64}, results: []api.ValueType{i32}}
	out := []hostFunc{
		f("pthread_equal", wordCall(2)),
		f("emscripten_notify_memory_growth", voidCall(1)),
		f("proxy_log", wordCall(3)),
		f("proxy_get_status", wordCall(3)),
		f("proxy_set_property", wordCall(4)),
		f("proxy_get_property", wordCall(4)),
		f("proxy_send_local_response", wordCall(8)),
		f("proxy_get_shared_data", wordCall(5)),
		f("proxy_set_shared_data", wordCall(5)),
		f("proxy_register_shared_queue", wordCall(3)),
		f("proxy_resolve_shared_queue", wordCall(5)),
		f("proxy_dequeue_shared_queue", wordCall(3)),
		f("proxy_enqueue_shared_queue", wordCall(3)),
		f("proxy_get_header_map_value", wordCall(5)),
		f("proxy_add_header_map_value", wordCall(5)),
		f("proxy_replace_header_map_value", wordCall(5)),
		f("proxy_remove_header_map_value", wordCall(3)),
		f("proxy_get_header_map_pairs", wordCall(3)),
		f("proxy_set_header_map_pairs", wordCall(3)),
		f("proxy_get_header_map_size", wordCall(2)),
		f("proxy_get_buffer_status", wordCall(3)),
		f("proxy_get_buffer_bytes", wordCall(5)),
		f("proxy_set_buffer_bytes", wordCall(5)),
		f("proxy_http_call", wordCall(10)),
		f("proxy_grpc_call", wordCall(12)),
		f("proxy_grpc_stream", wordCall(9)),
		f("proxy_grpc_close", wordCall(1)),
		f("proxy_grpc_cancel", wordCall(1)),
		f("proxy_grpc_send", wordCall(4)),
		f("proxy_set_tick_period_milliseconds", wordCall(1)),
		f("proxy_get_current_time_nanoseconds", wordCall(1)),
		f("proxy_define_metric", wordCall(4)),
		f("proxy_increment_metric", i32i64),
		f("proxy_record_metric", i32i64),
		f("proxy_get_metric", wordCall(2)),
		f("proxy_set_effective_context", wordCall(1)),
		f("proxy_done", wordCall(0)),
		f("proxy_call_foreign_function", wordCall(6)),
		f("envoy_resolve_dns", wordCall(3)),
	}
	switch abi {
	case abi010:
		out = append(out,
			f("proxy_get_configuration", wordCall(2)),
			f("proxy_continue_request", wordCall(0)),
			f("proxy_continue_response", wordCall(0)),
			f("proxy_clear_route_cache", wordCall(0)))
	case abi020:
		out = append(out,
			f("proxy_continue_stream", wordCall(1)),
			f("proxy_close_stream", wordCall(1)))
	case abi021:
		out = append(out,
			f("proxy_continue_stream", wordCall(1)),
			f("proxy_close_stream", wordCall(1)),
			f("proxy_get_log_level", wordCall(1)))
	}
	return out
}

// wasiSignatures are the WASI functions cpp-host can register, with the exact C++ parameter
// types of include/proxy-wasm/exports.h (Word = i32, int64_t/uint64_t = i64). Two of them
// deliberately follow Envoy rather than the WASI standard: path_link has 6 parameters and
// path_symlink 4, so a module importing the standard 7- and 5-parameter versions fails to
// link in Envoy with an import type mismatch, as it does here.
var wasiSignatures = map[string]signature{
	"fd_write":                voidOrWord(true, i32, i32, i32, i32),
	"fd_read":                 voidOrWord(true, i32, i32, i32, i32),
	"fd_seek":                 voidOrWord(true, i32, i64, i32, i32),
	"fd_close":                voidOrWord(true, i32),
	"fd_fdstat_get":           voidOrWord(true, i32, i32),
	"fd_fdstat_set_flags":     voidOrWord(true, i32, i32),
	"environ_get":             voidOrWord(true, i32, i32),
	"environ_sizes_get":       voidOrWord(true, i32, i32),
	"args_get":                voidOrWord(true, i32, i32),
	"args_sizes_get":          voidOrWord(true, i32, i32),
	"clock_time_get":          voidOrWord(true, i32, i64, i32),
	"random_get":              voidOrWord(true, i32, i32),
	"sched_yield":             voidOrWord(true),
	"poll_oneoff":             voidOrWord(true, i32, i32, i32, i32),
	"proc_exit":               voidOrWord(false, i32),
	"path_open":               voidOrWord(true, i32, i32, i32, i32, i32, i64, i64, i32, i32),
	"fd_prestat_get":          voidOrWord(true, i32, i32),
	"fd_prestat_dir_name":     voidOrWord(true, i32, i32, i32),
	"fd_fdstat_set_rights":    voidOrWord(true, i32, i64, i64),
	"clock_res_get":           voidOrWord(true, i32, i32),
	"fd_advise":               voidOrWord(true, i32, i64, i64, i32),
	"fd_allocate":             voidOrWord(true, i32, i64, i64),
	"fd_datasync":             voidOrWord(true, i32),
	"fd_filestat_set_size":    voidOrWord(true, i32, i64),
	"fd_filestat_set_times":   voidOrWord(true, i32, i64, i64, i32),
	"fd_pread":                voidOrWord(true, i32, i32, i32, i64, i32),
	"fd_pwrite":               voidOrWord(true, i32, i32, i32, i64, i32),
	"fd_readdir":              voidOrWord(true, i32, i32, i32, i64, i32),
	"fd_renumber":             voidOrWord(true, i32, i32),
	"fd_sync":                 voidOrWord(true, i32),
	"fd_tell":                 voidOrWord(true, i32, i32),
	"path_create_directory":   voidOrWord(true, i32, i32, i32),
	"path_filestat_set_times": voidOrWord(true, i32, i32, i32, i32, i64, i64, i32),
	"path_link":               voidOrWord(true, i32, i32, i32, i32, i32, i32),
	"path_readlink":           voidOrWord(true, i32, i32, i32, i32, i32, i32),
	"path_remove_directory":   voidOrWord(true, i32, i32, i32),
	"path_rename":             voidOrWord(true, i32, i32, i32, i32, i32, i32),
	"path_symlink":            voidOrWord(true, i32, i32, i32, i32),
	"path_unlink_file":        voidOrWord(true, i32, i32, i32),
	"sock_accept":             voidOrWord(true, i32, i32, i32),
	"sock_recv":               voidOrWord(true, i32, i32, i32, i32, i32, i32),
	"sock_send":               voidOrWord(true, i32, i32, i32, i32, i32),
	"sock_shutdown":           voidOrWord(true, i32, i32),
	"path_filestat_get":       voidOrWord(true, i32, i32, i32, i32, i32),
	"fd_filestat_get":         voidOrWord(true, i32, i32),
}

func voidOrWord(word bool, params ...api.ValueType) signature {
	s := signature{params: params}
	if word {
		s.results = []api.ValueType{i32}
	}
	return s
}

// wasiModules are the two module names cpp-host registers every WASI function under.
var wasiModules = []string{"wasi_snapshot_preview1", "wasi_unstable"}
