package abi

// Arena sizes. Host data of a callback (header values, header maps, the plugin configuration)
// lands in one reused chunk, so a request leaves no garbage behind; a single allocation larger
// than arenaLarge (a huge header map, a big configuration) gets its own slice, dropped at the
// next reset so that it does not stay resident.
const (
	arenaFirstChunk = 8 << 10
	arenaMaxChunk   = 256 << 10
	arenaLarge      = 64 << 10
)

// arena hands out the memory the host writes data into (proxy_on_memory_allocate). Everything
// it hands out stays valid, and reachable by the Go GC, until Reset, which the dispatcher calls
// at the start of every callback: data from the host is valid for the callback that asked for
// it, and no longer.
type arena struct {
	chunk   []byte   // current chunk; allocations are carved from chunk[off:]
	off     int      //
	retired [][]byte // chunks outgrown during this callback, kept alive until Reset
	large   [][]byte // one-off large allocations of this callback
}

// zeroByte backs zero-length allocations, which need a valid pointer but no memory.
var zeroByte [1]byte

// alloc returns n writable bytes.
func (a *arena) alloc(n int) []byte {
	if n <= 0 {
		return zeroByte[:0:0]
	}
	if n > arenaLarge {
		b := make([]byte, n)
		a.large = append(a.large, b)
		return b
	}
	if len(a.chunk)-a.off < n {
		if a.off > 0 {
			a.retired = append(a.retired, a.chunk)
		}
		size := 2 * len(a.chunk)
		if size < arenaFirstChunk {
			size = arenaFirstChunk
		}
		if size > arenaMaxChunk {
			size = arenaMaxChunk
		}
		if size < n {
			size = n
		}
		a.chunk = make([]byte, size)
		a.off = 0
	}
	b := a.chunk[a.off : a.off+n : a.off+n]
	a.off += n
	return b
}

// reset makes every earlier allocation reusable. The current chunk, the largest so far, is
// kept; outgrown chunks and large allocations are released to the GC.
func (a *arena) reset() {
	a.off = 0
	clear(a.retired)
	a.retired = a.retired[:0]
	clear(a.large)
	a.large = a.large[:0]
}
