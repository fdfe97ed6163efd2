// Command nomarker is a host test guest without a proxy_abi_version_* export: Envoy refuses to
// load it with "Missing or unknown Proxy-Wasm ABI version".
package main

import abi "github.com/s3cors/s3cors/wasmhost/testdata/guestabi"

func main() {}

//go:wasmexport proxy_on_memory_allocate
func onMemoryAllocate(size uint32) *byte { return abi.Alloc(size) }

//go:wasmexport proxy_on_request_headers
func onRequestHeaders(id, n, eos uint32) uint32 { return 0 }
