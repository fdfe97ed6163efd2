//go:build wasip1

package abi

import "unsafe"

// The env.proxy_* host functions this module imports, with exactly the wasm types Envoy links
// against (spec proxy-wasm-envoy.md §1.4): every parameter an i32 except the i64 metric
// value; every result an i32 WasmResult. Pointer-to-result parameters are unsafe.Pointer
// because the compiler accepts no **byte. The linker drops imports that nothing calls, so the
// built module imports only what Host uses.

//go:wasmimport env proxy_log
func proxyLog(level LogLevel, msg unsafe.Pointer, msgSize uint32) Status

//go:wasmimport env proxy_get_log_level
func proxyGetLogLevel(retLevel unsafe.Pointer) Status

//go:wasmimport env proxy_get_buffer_bytes
func proxyGetBufferBytes(t BufferType, start, maxSize uint32, retData, retSize unsafe.Pointer) Status

//go:wasmimport env proxy_get_header_map_pairs
func proxyGetHeaderMapPairs(m MapType, retData, retSize unsafe.Pointer) Status

//go:wasmimport env proxy_get_header_map_value
func proxyGetHeaderMapValue(m MapType, key unsafe.Pointer, keySize uint32, retData, retSize unsafe.Pointer) Status

//go:wasmimport env proxy_add_header_map_value
func proxyAddHeaderMapValue(m MapType, key unsafe.Pointer, keySize uint32, value unsafe.Pointer, valueSize uint32) Status

//go:wasmimport env proxy_replace_header_map_value
func proxyReplaceHeaderMapValue(m MapType, key unsafe.Pointer, keySize uint32, value unsafe.Pointer, valueSize uint32) Status

//go:wasmimport env proxy_remove_header_map_value
func proxyRemoveHeaderMapValue(m MapType, key unsafe.Pointer, keySize uint32) Status

//go:wasmimport env proxy_send_local_response
func proxySendLocalResponse(status uint32, details unsafe.Pointer, detailsSize uint32, body unsafe.Pointer, bodySize uint32, headers unsafe.Pointer, headersSize uint32, grpcStatus int32) Status

//go:wasmimport env proxy_define_metric
func proxyDefineMetric(t MetricType, name unsafe.Pointer, nameSize uint32, retID unsafe.Pointer) Status

//go:wasmimport env proxy_increment_metric
func proxyIncrementMetric(id uint32, delta int64) Status
