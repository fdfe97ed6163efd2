// Command noalloc is a host test guest without an allocator (neither malloc nor
// proxy_on_memory_allocate): Envoy refuses it with "Wasm module is missing malloc function."
package main

import abi "github.com/s3cors/s3cors/wasmhost/testdata/guestabi"

func main() {}

//go:wasmexport proxy_abi_version_0_2_1
func abiVersion() {}

//go:wasmexport proxy_on_request_headers
func onRequestHeaders(id, n, eos uint32) uint32 {
	abi.Log(2, "noalloc")
	return 0
}
