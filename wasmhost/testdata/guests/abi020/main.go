// Command abi020 is a host test guest declaring ABI 0.2.0 but importing proxy_get_log_level,
// which Envoy registers only for 0.2.1: the module fails to link.
package main

import abi "github.com/s3cors/s3cors/wasmhost/testdata/guestabi"

func main() {}

//go:wasmexport proxy_abi_version_0_2_0
func abiVersion() {}

//go:wasmexport proxy_on_memory_allocate
func onMemoryAllocate(size uint32) *byte { return abi.Alloc(size) }

//go:wasmexport proxy_on_request_headers
func onRequestHeaders(id, n, eos uint32) uint32 {
	abi.LogLevel()
	return 0
}
