// Command wasiprobe is a host test guest that calls WASI functions directly and logs their
// errnos and outputs: "wasi <function> errno=<n> ...".
package main

import (
	"strconv"
	"strings"
	"unsafe"

	abi "github.com/s3cors/s3cors/wasmhost/testdata/guestabi"
)

func main() {}

//go:wasmexport proxy_abi_version_0_2_1
func abiVersion() {}

//go:wasmexport proxy_on_memory_allocate
func onMemoryAllocate(size uint32) *byte { return abi.Alloc(size) }

//go:wasmimport wasi_snapshot_preview1 fd_fdstat_set_flags
func fdFdstatSetFlags(fd, flags uint32) uint32

//go:wasmimport wasi_snapshot_preview1 fd_fdstat_get
func fdFdstatGet(fd uint32, out unsafe.Pointer) uint32

//go:wasmimport wasi_snapshot_preview1 path_open
func pathOpen(fd, dirflags uint32, path unsafe.Pointer, pathLen, oflags uint32, base, inheriting uint64, fdflags uint32, ret unsafe.Pointer) uint32

//go:wasmimport wasi_snapshot_preview1 fd_prestat_get
func fdPrestatGet(fd uint32, out unsafe.Pointer) uint32

//go:wasmimport wasi_snapshot_preview1 fd_read
func fdRead(fd uint32, iovs unsafe.Pointer, n uint32, ret unsafe.Pointer) uint32

//go:wasmimport wasi_unstable fd_write
func fdWrite(fd uint32, iovs unsafe.Pointer, n uint32, ret unsafe.Pointer) uint32

//go:wasmimport wasi_snapshot_preview1 clock_time_get
func clockTimeGet(id uint32, precision uint64, ret unsafe.Pointer) uint32

//go:wasmimport wasi_snapshot_preview1 random_get
func randomGet(buf unsafe.Pointer, n uint32) uint32

//go:wasmimport wasi_snapshot_preview1 args_sizes_get
func argsSizesGet(argc, size unsafe.Pointer) uint32

//go:wasmimport wasi_snapshot_preview1 environ_sizes_get
func environSizesGet(count, size unsafe.Pointer) uint32

//go:wasmimport wasi_snapshot_preview1 environ_get
func environGet(arr, buf unsafe.Pointer) uint32

//go:wasmimport wasi_snapshot_preview1 poll_oneoff
func pollOneoff(in, out unsafe.Pointer, n uint32, nevents unsafe.Pointer) uint32

//go:wasmimport wasi_snapshot_preview1 sched_yield
func schedYield() uint32

//go:wasmimport wasi_snapshot_preview1 fd_prestat_dir_name
func fdPrestatDirName(fd uint32, path unsafe.Pointer, n uint32) uint32

func u(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

//go:wasmexport proxy_on_request_headers
func onRequestHeaders(id, n, eos uint32) uint32 {
	var out []string
	out = append(out, "set_flags="+u(fdFdstatSetFlags(1, 4)))
	var st [24]byte
	r := fdFdstatGet(1, unsafe.Pointer(&st[0]))
	rights := uint64(st[8]) | uint64(st[9])<<8
	out = append(out, "fdstat1="+u(r)+"/"+strconv.FormatUint(rights, 10), "fdstat3="+u(fdFdstatGet(3, unsafe.Pointer(&st[0]))))
	var fd uint32
	p := "x"
	out = append(out, "path_open="+u(pathOpen(3, 0, unsafe.Pointer(unsafe.StringData(p)), 1, 0, 0, 0, 0, unsafe.Pointer(&fd))))
	var pre [8]byte
	out = append(out, "prestat="+u(fdPrestatGet(3, unsafe.Pointer(&pre[0]))), "prestat_dir_name="+u(fdPrestatDirName(3, unsafe.Pointer(&pre[0]), 8)))
	var nread uint32
	var iov [8]byte
	out = append(out, "fd_read="+u(fdRead(0, unsafe.Pointer(&iov[0]), 0, unsafe.Pointer(&nread))))
	msg := "to fd 3"
	var wiov [2]uint32
	wiov[0] = uint32(uintptr(unsafe.Pointer(unsafe.StringData(msg))))
	wiov[1] = uint32(len(msg))
	var nw uint32
	out = append(out, "fd_write3="+u(fdWrite(3, unsafe.Pointer(&wiov[0]), 1, unsafe.Pointer(&nw))))
	line := "hello stdout\n"
	wiov[0] = uint32(uintptr(unsafe.Pointer(unsafe.StringData(line))))
	wiov[1] = uint32(len(line))
	out = append(out, "fd_write1="+u(fdWrite(1, unsafe.Pointer(&wiov[0]), 1, unsafe.Pointer(&nw)))+"/"+u(nw))
	errLine := "hello stderr\n\n"
	wiov[0] = uint32(uintptr(unsafe.Pointer(unsafe.StringData(errLine))))
	wiov[1] = uint32(len(errLine))
	out = append(out, "fd_write2="+u(fdWrite(2, unsafe.Pointer(&wiov[0]), 1, unsafe.Pointer(&nw))))
	var t uint64
	out = append(out, "clock0="+u(clockTimeGet(0, 1, unsafe.Pointer(&t))), "clock1="+u(clockTimeGet(1, 1, unsafe.Pointer(&t))),
		"clock2="+u(clockTimeGet(2, 1, unsafe.Pointer(&t))))
	buf := make([]byte, 65537)
	out = append(out, "random64k="+u(randomGet(unsafe.Pointer(&buf[0]), 65536)), "random64k1="+u(randomGet(unsafe.Pointer(&buf[0]), 65537)))
	argc, argsz := uint32(7), uint32(7)
	out = append(out, "args_sizes="+u(argsSizesGet(unsafe.Pointer(&argc), unsafe.Pointer(&argsz)))+"/"+u(argc)+"/"+u(argsz))
	var ec, es uint32
	r = environSizesGet(unsafe.Pointer(&ec), unsafe.Pointer(&es))
	env := ""
	if r == 0 && ec > 0 {
		arr := make([]uint32, ec)
		eb := make([]byte, es)
		environGet(unsafe.Pointer(&arr[0]), unsafe.Pointer(&eb[0]))
		env = strings.ReplaceAll(strings.TrimRight(string(eb), "\x00"), "\x00", ";")
	}
	out = append(out, "environ="+u(r)+"/"+u(ec)+"/"+strconv.Quote(env))
	var sub [48]byte
	var ev [32]byte
	nevents := uint32(77)
	out = append(out, "poll_oneoff="+u(pollOneoff(unsafe.Pointer(&sub[0]), unsafe.Pointer(&ev[0]), 1, unsafe.Pointer(&nevents)))+"/"+u(nevents))
	out = append(out, "sched_yield="+u(schedYield()))
	abi.Log(2, "wasi "+strings.Join(out, " "))
	return 0
}
