// Command inithostcall is a host test guest that calls a proxy hostcall other than proxy_log
// from init(), i.e. during _initialize: Envoy traps it with "restricted_callback" and the
// module fails to initialize.
package main

import abi "github.com/s3cors/s3cors/wasmhost/testdata/guestabi"

func main() {}

func init() {
	abi.DefineMetric(0, "too_early")
}

//go:wasmexport proxy_abi_version_0_2_1
func abiVersion() {}

//go:wasmexport proxy_on_memory_allocate
func onMemoryAllocate(size uint32) *byte { return abi.Alloc(size) }
