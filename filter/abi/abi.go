package abi

import "strconv"

// Status is the WasmResult every proxy_* host call returns. Ok is never returned as an error:
// host methods return nil instead.
type Status uint32

// WasmResult values (proxy-wasm spec, Envoy's enum).
const (
	StatusOk                   Status = 0
	StatusNotFound             Status = 1
	StatusBadArgument          Status = 2
	StatusSerializationFailure Status = 3
	StatusParseFailure         Status = 4
	StatusBadExpression        Status = 5
	StatusInvalidMemoryAccess  Status = 6
	StatusEmpty                Status = 7
	StatusCasMismatch          Status = 8
	StatusResultMismatch       Status = 9
	StatusInternalFailure      Status = 10
	StatusBrokenConnection     Status = 11
	StatusUnimplemented        Status = 12
)

var statusNames = [...]string{
	"ok", "not found", "bad argument", "serialization failure", "parse failure",
	"bad expression", "invalid memory access", "empty", "cas mismatch", "result mismatch",
	"internal failure", "broken connection", "unimplemented",
}

// Error renders the status, e.g. "abi: host call failed: not found".
func (s Status) Error() string {
	if int(s) < len(statusNames) {
		return "abi: host call failed: " + statusNames[s]
	}
	return "abi: host call failed: status " + strconv.FormatUint(uint64(s), 10)
}

// AsError returns nil for StatusOk and s otherwise.
func (s Status) AsError() error {
	if s == StatusOk {
		return nil
	}
	return s
}

// MapType names a header map.
type MapType uint32

// Header map types.
const (
	RequestHeaders   MapType = 0
	RequestTrailers  MapType = 1
	ResponseHeaders  MapType = 2
	ResponseTrailers MapType = 3
)

// BufferType names a host buffer.
type BufferType uint32

// Buffer types.
const (
	HTTPRequestBody     BufferType = 0
	HTTPResponseBody    BufferType = 1
	VMConfiguration     BufferType = 6
	PluginConfiguration BufferType = 7
)

// LogLevel is a proxy_log level. LogOff is what the host reports when logging is off.
type LogLevel uint32

// Log levels.
const (
	LogTrace    LogLevel = 0
	LogDebug    LogLevel = 1
	LogInfo     LogLevel = 2
	LogWarn     LogLevel = 3
	LogError    LogLevel = 4
	LogCritical LogLevel = 5
	LogOff      LogLevel = 6
)

var levelNames = [...]string{"trace", "debug", "info", "warn", "error", "critical", "off"}

// String returns the level's name (trace … critical, off).
func (l LogLevel) String() string {
	if int(l) < len(levelNames) {
		return levelNames[l]
	}
	return "level(" + strconv.FormatUint(uint64(l), 10) + ")"
}

// MetricType is a proxy_define_metric type.
type MetricType uint32

// Metric types.
const (
	Counter   MetricType = 0
	Gauge     MetricType = 1
	Histogram MetricType = 2
)

// Action is what a stream callback returns: Continue lets the stream go on, Pause stops it
// (Envoy maps Pause on headers to StopAllIterationAndWatermark).
type Action uint32

// Actions.
const (
	Continue Action = 0
	Pause    Action = 1
)

// NoGRPCStatus is the grpc_status of a local reply that sets none.
const NoGRPCStatus int32 = -1

// Header is one header line. Strings a Host returns may point into memory that is reused once
// the current callback returns: copy what must outlive it.
type Header struct {
	Name  string
	Value string
}

// Host is what a plugin may ask of the proxy. Every method is one proxy_* host call; errors are
// Status values. Strings and byte slices a Host returns are valid only until the callback that
// obtained them returns.
type Host interface {
	// Log writes msg at level (proxy_log).
	Log(level LogLevel, msg string) error
	// LogLevel returns the proxy's current log level (proxy_get_log_level), so that a plugin
	// formats nothing the proxy would drop.
	LogLevel() (LogLevel, error)
	// GetBuffer returns up to max bytes of a buffer from start (proxy_get_buffer_bytes); an
	// empty buffer is nil with no error. Like all host data it is valid for the callback,
	// except that more than LargeData bytes are memory of their own that no later callback
	// reuses: the caller may keep them instead of copying (a large plugin configuration).
	GetBuffer(t BufferType, start, max uint32) ([]byte, error)
	// GetHeader returns the first value of a header (proxy_get_header_map_value); ok is false
	// when the header is absent. The name lookup is case-insensitive.
	GetHeader(m MapType, name string) (value string, ok bool, err error)
	// GetHeaders appends every header of a map to dst, in the host's order, with lower-case
	// names (proxy_get_header_map_pairs). A map that is not available is empty.
	GetHeaders(m MapType, dst []Header) ([]Header, error)
	// AddHeader appends a header line, keeping existing ones (proxy_add_header_map_value).
	AddHeader(m MapType, name, value string) error
	// ReplaceHeader sets a header to one value, adding it if absent
	// (proxy_replace_header_map_value).
	ReplaceHeader(m MapType, name, value string) error
	// RemoveHeader removes every line of a header; absent is not an error
	// (proxy_remove_header_map_value).
	RemoveHeader(m MapType, name string) error
	// SendLocalResponse answers the current stream at the proxy (proxy_send_local_response).
	// The reply is sent after the callback returns, which should return at once. details must
	// not contain whitespace; grpcStatus is NoGRPCStatus for plain HTTP.
	SendLocalResponse(status uint32, details string, body []byte, headers []Header, grpcStatus int32) error
	// DefineMetric defines (or finds) a metric and returns its id (proxy_define_metric).
	DefineMetric(t MetricType, name string) (uint32, error)
	// IncrementMetric adds delta to a counter or gauge (proxy_increment_metric).
	IncrementMetric(id uint32, delta int64) error
}

// Plugin is what the module's exported callbacks call. Context ids come from the host: root
// contexts have parent 0, stream contexts have their root as parent. The host serialises every
// call within a VM, so a Plugin needs no locking.
type Plugin interface {
	// OnVMStart runs once per root context after it is created; false refuses to start.
	OnVMStart(root uint32, vmConfigSize uint32) bool
	// OnConfigure runs with the plugin configuration; false refuses the configuration (Envoy
	// NACKs it, or refuses to start).
	OnConfigure(root uint32, pluginConfigSize uint32) bool
	// OnContextCreate announces a root (parent 0) or stream context.
	OnContextCreate(ctx, parent uint32)
	// OnRequestHeaders runs when a stream's request headers arrive.
	OnRequestHeaders(ctx uint32, numHeaders uint32, endOfStream bool) Action
	// OnResponseHeaders runs when a stream's response headers arrive, including those of a
	// local reply.
	OnResponseHeaders(ctx uint32, numHeaders uint32, endOfStream bool) Action
	// OnDone runs when a context is finishing; for a root context, true lets the host delete
	// it now. The result is ignored for stream contexts.
	OnDone(ctx uint32) bool
	// OnDelete runs last for every context; nothing is called for it afterwards.
	OnDelete(ctx uint32)
}
