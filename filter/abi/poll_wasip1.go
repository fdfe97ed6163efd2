//go:build wasip1

package abi

import (
	"encoding/binary"
	"unsafe"
)

// The module's own view of the host's poll_oneoff (the same import the Go runtime uses), to
// tell Envoy 1.33–1.38, where it fails with ENOSYS, from Envoy 1.39 and later, where it
// answers at once with no events (proxy-wasm-cpp-host #533).
//
//go:wasmimport wasi_snapshot_preview1 poll_oneoff
func wasiPollOneoff(in, out unsafe.Pointer, nsubscriptions uint32, nevents unsafe.Pointer) uint32

// The probe's buffers: one WASI subscription (48 bytes) and one event (32 bytes), 8-aligned as
// WASI requires, in package memory that never moves.
var (
	probeSubscription [6]uint64
	probeEvent        [4]uint64
	probeEvents       uint32
)

// pollOneoffWorks asks the host to poll one relative monotonic-clock subscription with a zero
// timeout, which any working poll_oneoff answers at once, and reports whether it succeeded.
func pollOneoffWorks() bool {
	sub := unsafe.Slice((*byte)(unsafe.Pointer(&probeSubscription)), 48)
	clear(sub)
	binary.LittleEndian.PutUint64(sub[0:], 0x5333_434f_5253) // userdata, arbitrary
	sub[8] = 0                                               // tag: clock
	binary.LittleEndian.PutUint32(sub[16:], 1)               // clock id: monotonic
	binary.LittleEndian.PutUint64(sub[24:], 0)               // timeout: 0 ns
	binary.LittleEndian.PutUint64(sub[32:], 0)               // precision
	binary.LittleEndian.PutUint16(sub[40:], 0)               // flags: relative
	errno := wasiPollOneoff(unsafe.Pointer(&probeSubscription), unsafe.Pointer(&probeEvent), 1, unsafe.Pointer(&probeEvents))
	return errno == 0
}
