// Command timer is a host test guest for Go's netpoller and Envoy's poll_oneoff. Each request
// allocates (x-alloc bytes, default 64 KiB, 16 buffers kept alive) and, with x-gc, forces a
// garbage collection; with x-arm it first arms (and stops) a Go timer. Arming a timer, or a
// forced GC waking the runtime's background scavenger (which sleeps on a runtime timer),
// initialises the netpoller; from then on every GC calls poll_oneoff: Envoy 1.33-1.38 answers
// ENOSYS and the Go runtime dies with "fatal error: poll_oneoff failed"; Envoy 1.39 answers
// success.
package main

import (
	"runtime"
	"strconv"
	"time"

	abi "github.com/s3cors/s3cors/wasmhost/testdata/guestabi"
)

func main() {}

//go:wasmexport proxy_abi_version_0_2_1
func abiVersion() {}

//go:wasmexport proxy_on_memory_allocate
func onMemoryAllocate(size uint32) *byte { return abi.Alloc(size) }

var (
	sink  [][]byte
	armed bool
)

//go:wasmexport proxy_on_request_headers
func onRequestHeaders(id, n, eos uint32) uint32 {
	if _, r := abi.GetHeader(abi.RequestHeaders, "x-arm"); r == 0 && !armed {
		armed = true
		time.AfterFunc(time.Hour, func() {}).Stop()
		abi.Log(2, "timer armed")
	}
	size := 64 << 10
	if v, r := abi.GetHeader(abi.RequestHeaders, "x-alloc"); r == 0 {
		size, _ = strconv.Atoi(v)
	}
	b := make([]byte, size)
	b[len(b)-1] = 1
	sink = append(sink, b)
	if len(sink) > 16 {
		sink = sink[1:]
	}
	if _, r := abi.GetHeader(abi.RequestHeaders, "x-gc"); r == 0 {
		runtime.GC()
	}
	return 0
}

//go:wasmexport proxy_on_done
func onDone(id uint32) uint32 { return 1 }
