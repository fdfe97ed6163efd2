// Command badmalloc is a host test guest whose allocator makes a hostcall Envoy does not allow
// inside the allocator, chosen by the request header x-mode: "loglevel" calls
// proxy_get_log_level (never allowed), "poll" calls WASI poll_oneoff (allowed from Envoy 1.39,
// cpp-host #533). The allocator then traps with restricted_callback, the hostcall that needed
// memory answers InvalidMemoryAccess (6) and the guest goes on until its callback returns.
package main

import (
	"strconv"
	"unsafe"

	abi "github.com/s3cors/s3cors/wasmhost/testdata/guestabi"
)

func main() {}

//go:wasmimport wasi_snapshot_preview1 poll_oneoff
func pollOneoff(in, out unsafe.Pointer, n uint32, nevents unsafe.Pointer) uint32

//go:wasmexport proxy_abi_version_0_2_1
func abiVersion() {}

var mode string

//go:wasmexport proxy_on_memory_allocate
func onMemoryAllocate(size uint32) *byte {
	switch mode {
	case "loglevel":
		abi.LogLevel()
	case "poll":
		var sub [48]byte
		var ev [32]byte
		var n uint32
		pollOneoff(unsafe.Pointer(&sub[0]), unsafe.Pointer(&ev[0]), 1, unsafe.Pointer(&n))
	}
	return abi.Alloc(size)
}

//go:wasmexport proxy_on_request_headers
func onRequestHeaders(id, n, eos uint32) uint32 {
	m, _ := abi.GetHeader(abi.RequestHeaders, "x-mode")
	mode = m
	_, r := abi.GetHeader(abi.RequestHeaders, ":path")
	mode = ""
	abi.Log(2, "badmalloc get_status="+strconv.Itoa(int(r)))
	return 0
}
