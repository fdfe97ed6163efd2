// Command mainvoid is a host test guest exporting __main_void: Envoy 1.39 (cpp-host #500) calls
// it after _initialize, Envoy 1.33-1.38 does not.
package main

import abi "github.com/s3cors/s3cors/wasmhost/testdata/guestabi"

func main() {}

//go:wasmexport __main_void
func mainVoid() uint32 {
	abi.Log(2, "__main_void called")
	return 0
}

//go:wasmexport proxy_abi_version_0_2_1
func abiVersion() {}

//go:wasmexport proxy_on_memory_allocate
func onMemoryAllocate(size uint32) *byte { return abi.Alloc(size) }
