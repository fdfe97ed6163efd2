// Command mallocpref is a host test guest exporting both malloc and proxy_on_memory_allocate:
// Envoy uses malloc. Each allocator logs its name (proxy_log is allowed inside the allocator).
package main

import abi "github.com/s3cors/s3cors/wasmhost/testdata/guestabi"

func main() {}

//go:wasmexport proxy_abi_version_0_2_1
func abiVersion() {}

//go:wasmexport malloc
func malloc(size uint32) *byte {
	abi.Log(2, "allocator malloc")
	return abi.Alloc(size)
}

//go:wasmexport proxy_on_memory_allocate
func onMemoryAllocate(size uint32) *byte {
	abi.Log(2, "allocator proxy_on_memory_allocate")
	return abi.Alloc(size)
}

//go:wasmexport proxy_on_request_headers
func onRequestHeaders(id, n, eos uint32) uint32 {
	abi.GetHeader(abi.RequestHeaders, ":path")
	return 0
}
