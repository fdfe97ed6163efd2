// Command badsig is a host test guest that exports proxy_on_request_headers with the ABI 0.1.0
// signature (no end_of_stream) while declaring ABI 0.2.1: Envoy refuses to load it with
// "Bad function signature for: proxy_on_request_headers ...".
package main

import abi "github.com/s3cors/s3cors/wasmhost/testdata/guestabi"

func main() {}

//go:wasmexport proxy_abi_version_0_2_1
func abiVersion() {}

//go:wasmexport proxy_on_memory_allocate
func onMemoryAllocate(size uint32) *byte { return abi.Alloc(size) }

//go:wasmexport proxy_on_request_headers
func onRequestHeaders(id, n uint32) uint32 { return 0 }
