// Command stat is a host test guest that calls os.Stat, which makes the Go linker import
// wasi_snapshot_preview1.path_filestat_get: Envoy 1.33-1.38 lacks it and refuses to load the
// module; Envoy 1.39 loads it (and the call fails at run time, as there is no file system).
package main

import (
	"os"

	abi "github.com/s3cors/s3cors/wasmhost/testdata/guestabi"
)

func main() {}

//go:wasmexport proxy_abi_version_0_2_1
func abiVersion() {}

//go:wasmexport proxy_on_memory_allocate
func onMemoryAllocate(size uint32) *byte { return abi.Alloc(size) }

//go:wasmexport proxy_on_configure
func onConfigure(id, size uint32) uint32 {
	_, err := os.Stat("/etc/hostname")
	msg := "stat ok"
	if err != nil {
		msg = "stat error: " + err.Error()
	}
	abi.Log(2, msg)
	return 1
}
