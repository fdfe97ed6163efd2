// Command initpoll is a host test guest that calls WASI poll_oneoff during _initialize (as Go's
// runtime does when it sleeps during init). Envoy 1.33-1.38 does not allow poll_oneoff there
// and traps with "restricted_callback"; Envoy 1.39 allows it.
package main

import (
	"unsafe"

	abi "github.com/s3cors/s3cors/wasmhost/testdata/guestabi"
)

func main() {}

//go:wasmimport wasi_snapshot_preview1 poll_oneoff
func pollOneoff(in, out unsafe.Pointer, n uint32, nevents unsafe.Pointer) uint32

func init() {
	var sub [48]byte
	var ev [32]byte
	var nevents uint32
	r := pollOneoff(unsafe.Pointer(&sub[0]), unsafe.Pointer(&ev[0]), 1, unsafe.Pointer(&nevents))
	abi.Log(2, "initpoll errno="+string(rune('0'+r%10)))
}

//go:wasmexport proxy_abi_version_0_2_1
func abiVersion() {}

//go:wasmexport proxy_on_memory_allocate
func onMemoryAllocate(size uint32) *byte { return abi.Alloc(size) }
