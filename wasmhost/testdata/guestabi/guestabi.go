//go:build wasip1

// Package guestabi is the proxy-wasm glue of the host's own test guests: go:wasmimport
// declarations of the hostcalls and helpers that encode arguments. It shares nothing with the
// s3cors filter on purpose, so that a mistake mirrored in the filter and the host is not
// mirrored here too. It declares no exports: each guest chooses its own (marker, allocator,
// callbacks), since several guests exist to get exactly those wrong.
package guestabi

import (
	"encoding/binary"
	"unsafe"
)

// Map, buffer and stream types (Proxy-Wasm ABI 0.2.1).
const (
	RequestHeaders   = 0
	RequestTrailers  = 1
	ResponseHeaders  = 2
	ResponseTrailers = 3

	RequestBody  = 0
	ResponseBody = 1
	VMConfig     = 6
	PluginConfig = 7
)

// Allocs counts allocator calls made by the host (the guests' allocators increment it).
var Allocs int

// Alloc is the body of a guest allocator: a fresh Go buffer of size bytes.
func Alloc(size uint32) *byte {
	Allocs++
	if size == 0 {
		size = 1
	}
	b := make([]byte, size)
	return &b[0]
}

func strPtr(s string) unsafe.Pointer { return unsafe.Pointer(unsafe.StringData(s)) }

func bytesPtr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

// take copies a host-returned buffer into Go memory.
func take(p *byte, n uint32) []byte {
	if p == nil || n == 0 {
		return nil
	}
	return append([]byte(nil), unsafe.Slice(p, n)...)
}

//go:wasmimport env proxy_log
func proxyLog(level uint32, msg unsafe.Pointer, size uint32) uint32

// Log logs msg at level (0 trace ... 5 critical) and returns the status.
func Log(level uint32, msg string) uint32 { return proxyLog(level, strPtr(msg), uint32(len(msg))) }

//go:wasmimport env proxy_get_log_level
func proxyGetLogLevel(ret unsafe.Pointer) uint32

// LogLevel returns the host's wasm log level.
func LogLevel() (uint32, uint32) {
	var l uint32
	r := proxyGetLogLevel(unsafe.Pointer(&l))
	return l, r
}

//go:wasmimport env proxy_get_header_map_value
func proxyGetHeaderMapValue(typ uint32, key unsafe.Pointer, keyLen uint32, retPtr, retSize unsafe.Pointer) uint32

// GetHeader returns the first value of key in the map.
func GetHeader(typ uint32, key string) (string, uint32) {
	var p *byte
	var n uint32
	r := proxyGetHeaderMapValue(typ, strPtr(key), uint32(len(key)), unsafe.Pointer(&p), unsafe.Pointer(&n))
	return string(take(p, n)), r
}

// GetHeaderRaw returns the raw pointer and size the host wrote (starting from sentinels), to
// check that a zero-length result is ptr=0,size=0.
func GetHeaderRaw(typ uint32, key string) (ptr uint32, size uint32, status uint32) {
	p := uint32(0xdead0)
	n := uint32(0xbeef)
	r := proxyGetHeaderMapValue(typ, strPtr(key), uint32(len(key)), unsafe.Pointer(&p), unsafe.Pointer(&n))
	return p, n, r
}

// PairsRaw returns the raw pointer and size of proxy_get_header_map_pairs.
func PairsRaw(typ uint32) (ptr uint32, size uint32, status uint32) {
	p := uint32(0xdead0)
	n := uint32(0xbeef)
	r := proxyGetHeaderMapPairs(typ, unsafe.Pointer(&p), unsafe.Pointer(&n))
	return p, n, r
}

//go:wasmimport env proxy_add_header_map_value
func proxyAddHeaderMapValue(typ uint32, key unsafe.Pointer, keyLen uint32, val unsafe.Pointer, valLen uint32) uint32

//go:wasmimport env proxy_replace_header_map_value
func proxyReplaceHeaderMapValue(typ uint32, key unsafe.Pointer, keyLen uint32, val unsafe.Pointer, valLen uint32) uint32

//go:wasmimport env proxy_remove_header_map_value
func proxyRemoveHeaderMapValue(typ uint32, key unsafe.Pointer, keyLen uint32) uint32

// AddHeader appends a header.
func AddHeader(typ uint32, key, val string) uint32 {
	return proxyAddHeaderMapValue(typ, strPtr(key), uint32(len(key)), strPtr(val), uint32(len(val)))
}

// ReplaceHeader sets a header, replacing every value.
func ReplaceHeader(typ uint32, key, val string) uint32 {
	return proxyReplaceHeaderMapValue(typ, strPtr(key), uint32(len(key)), strPtr(val), uint32(len(val)))
}

// RemoveHeader removes every value of a header.
func RemoveHeader(typ uint32, key string) uint32 {
	return proxyRemoveHeaderMapValue(typ, strPtr(key), uint32(len(key)))
}

//go:wasmimport env proxy_get_header_map_pairs
func proxyGetHeaderMapPairs(typ uint32, retPtr, retSize unsafe.Pointer) uint32

//go:wasmimport env proxy_set_header_map_pairs
func proxySetHeaderMapPairs(typ uint32, ptr unsafe.Pointer, size uint32) uint32

//go:wasmimport env proxy_get_header_map_size
func proxyGetHeaderMapSize(typ uint32, ret unsafe.Pointer) uint32

// Pairs returns the whole map, the raw size the host returned and the status.
func Pairs(typ uint32) ([][2]string, uint32, uint32) {
	var p *byte
	var n uint32
	r := proxyGetHeaderMapPairs(typ, unsafe.Pointer(&p), unsafe.Pointer(&n))
	return DecodePairs(take(p, n)), n, r
}

// SetPairs replaces the whole map with an encoded pairs buffer (EncodePairs, or anything).
func SetPairs(typ uint32, raw []byte) uint32 {
	return proxySetHeaderMapPairs(typ, bytesPtr(raw), uint32(len(raw)))
}

// MapSize returns the map's byte size.
func MapSize(typ uint32) (uint32, uint32) {
	var n uint32
	r := proxyGetHeaderMapSize(typ, unsafe.Pointer(&n))
	return n, r
}

// EncodePairs is the Proxy-Wasm pairs encoding, written from the ABI text independently of
// the host's encoder.
func EncodePairs(h [][2]string) []byte {
	size := 4
	for _, kv := range h {
		size += 8 + len(kv[0]) + len(kv[1]) + 2
	}
	out := make([]byte, 4, size)
	binary.LittleEndian.PutUint32(out, uint32(len(h)))
	for _, kv := range h {
		out = binary.LittleEndian.AppendUint32(out, uint32(len(kv[0])))
		out = binary.LittleEndian.AppendUint32(out, uint32(len(kv[1])))
	}
	for _, kv := range h {
		out = append(append(out, kv[0]...), 0)
		out = append(append(out, kv[1]...), 0)
	}
	return out
}

// DecodePairs decodes the pairs encoding; nil for an empty or malformed buffer.
func DecodePairs(b []byte) [][2]string {
	if len(b) < 4 {
		return nil
	}
	n := int(binary.LittleEndian.Uint32(b))
	if 4+8*n > len(b) {
		return nil
	}
	out := make([][2]string, n)
	p := 4 + 8*n
	for i := 0; i < n; i++ {
		kl := int(binary.LittleEndian.Uint32(b[4+8*i:]))
		vl := int(binary.LittleEndian.Uint32(b[8+8*i:]))
		if p+kl+1+vl+1 > len(b) {
			return nil
		}
		out[i][0] = string(b[p : p+kl])
		p += kl + 1
		out[i][1] = string(b[p : p+vl])
		p += vl + 1
	}
	return out
}

//go:wasmimport env proxy_get_buffer_bytes
func proxyGetBufferBytes(typ, start, max uint32, retPtr, retSize unsafe.Pointer) uint32

//go:wasmimport env proxy_set_buffer_bytes
func proxySetBufferBytes(typ, start, size uint32, data unsafe.Pointer, dataLen uint32) uint32

//go:wasmimport env proxy_get_buffer_status
func proxyGetBufferStatus(typ uint32, length, flags unsafe.Pointer) uint32

// GetBuffer returns up to max bytes of a buffer from start.
func GetBuffer(typ, start, max uint32) ([]byte, uint32) {
	var p *byte
	var n uint32
	r := proxyGetBufferBytes(typ, start, max, unsafe.Pointer(&p), unsafe.Pointer(&n))
	return take(p, n), r
}

// SetBuffer changes a buffer (Envoy: start 0 replaces size bytes, start >= len appends).
func SetBuffer(typ, start, size uint32, data []byte) uint32 {
	return proxySetBufferBytes(typ, start, size, bytesPtr(data), uint32(len(data)))
}

// BufferStatus returns a buffer's length.
func BufferStatus(typ uint32) (uint32, uint32) {
	var n, flags uint32
	r := proxyGetBufferStatus(typ, unsafe.Pointer(&n), unsafe.Pointer(&flags))
	return n, r
}

//go:wasmimport env proxy_send_local_response
func proxySendLocalResponse(status uint32, details unsafe.Pointer, detailsLen uint32, body unsafe.Pointer, bodyLen uint32, headers unsafe.Pointer, headersLen uint32, grpc int32) uint32

// SendLocalResponse asks for a local reply.
func SendLocalResponse(status uint32, details string, body string, headers [][2]string, grpc int32) uint32 {
	h := EncodePairs(headers)
	if len(headers) == 0 {
		h = nil
	}
	return proxySendLocalResponse(status, strPtr(details), uint32(len(details)), strPtr(body), uint32(len(body)), bytesPtr(h), uint32(len(h)), grpc)
}

// SendLocalResponseRawHeaders sends a reply with a raw (possibly malformed) header buffer.
func SendLocalResponseRawHeaders(status uint32, body string, raw []byte) uint32 {
	return proxySendLocalResponse(status, nil, 0, strPtr(body), uint32(len(body)), bytesPtr(raw), uint32(len(raw)), -1)
}

//go:wasmimport env proxy_continue_stream
func proxyContinueStream(typ uint32) uint32

//go:wasmimport env proxy_close_stream
func proxyCloseStream(typ uint32) uint32

// ContinueStream resumes a stopped stream direction.
func ContinueStream(typ uint32) uint32 { return proxyContinueStream(typ) }

// CloseStream resets a stream direction.
func CloseStream(typ uint32) uint32 { return proxyCloseStream(typ) }

//go:wasmimport env proxy_set_effective_context
func proxySetEffectiveContext(id uint32) uint32

// SetEffectiveContext makes later hostcalls of this callback act on context id.
func SetEffectiveContext(id uint32) uint32 { return proxySetEffectiveContext(id) }

//go:wasmimport env proxy_done
func proxyDone() uint32

// Done tells the host a root context may be deleted.
func Done() uint32 { return proxyDone() }

//go:wasmimport env proxy_set_tick_period_milliseconds
func proxySetTickPeriod(ms uint32) uint32

// SetTickPeriod arms (or with 0 disarms) proxy_on_tick.
func SetTickPeriod(ms uint32) uint32 { return proxySetTickPeriod(ms) }

//go:wasmimport env proxy_define_metric
func proxyDefineMetric(typ uint32, name unsafe.Pointer, nameLen uint32, ret unsafe.Pointer) uint32

//go:wasmimport env proxy_increment_metric
func proxyIncrementMetric(id uint32, delta int64) uint32

//go:wasmimport env proxy_record_metric
func proxyRecordMetric(id uint32, value uint64) uint32

//go:wasmimport env proxy_get_metric
func proxyGetMetric(id uint32, ret unsafe.Pointer) uint32

// DefineMetric defines a metric (0 counter, 1 gauge, 2 histogram).
func DefineMetric(typ uint32, name string) (uint32, uint32) {
	var id uint32
	r := proxyDefineMetric(typ, strPtr(name), uint32(len(name)), unsafe.Pointer(&id))
	return id, r
}

// IncrementMetric adds delta.
func IncrementMetric(id uint32, delta int64) uint32 { return proxyIncrementMetric(id, delta) }

// RecordMetric records value.
func RecordMetric(id uint32, value uint64) uint32 { return proxyRecordMetric(id, value) }

// GetMetric reads a metric.
func GetMetric(id uint32) (uint64, uint32) {
	var v uint64
	r := proxyGetMetric(id, unsafe.Pointer(&v))
	return v, r
}

//go:wasmimport env proxy_get_property
func proxyGetProperty(path unsafe.Pointer, pathLen uint32, retPtr, retSize unsafe.Pointer) uint32

// GetProperty reads a property; segments are joined with NUL.
func GetProperty(segments ...string) ([]byte, uint32) {
	path := ""
	for i, s := range segments {
		if i > 0 {
			path += "\x00"
		}
		path += s
	}
	var p *byte
	var n uint32
	r := proxyGetProperty(strPtr(path), uint32(len(path)), unsafe.Pointer(&p), unsafe.Pointer(&n))
	return take(p, n), r
}

//go:wasmimport env proxy_http_call
func proxyHTTPCall(upstream unsafe.Pointer, upstreamLen uint32, headers unsafe.Pointer, headersLen uint32, body unsafe.Pointer, bodyLen uint32, trailers unsafe.Pointer, trailersLen uint32, timeout uint32, token unsafe.Pointer) uint32

// HTTPCall dispatches a callout to cluster.
func HTTPCall(cluster string, headers [][2]string) (uint32, uint32) {
	h := EncodePairs(headers)
	var token uint32
	r := proxyHTTPCall(strPtr(cluster), uint32(len(cluster)), bytesPtr(h), uint32(len(h)), nil, 0, nil, 0, 1000, unsafe.Pointer(&token))
	return token, r
}
