package abi

// Arena sizes. Host data of a callback (header values, header maps, the plugin configuration)
// lands in one chunk that is reused by every callback, so that serving requests allocates
// nothing: the chunk grows (doubling) until it holds the most host data any one callback has
// received, and stays. A chunk grown past arenaKeep is dropped once a configuration is
// compiled, and data larger than arenaKeep (a large configuration) gets an allocation of its
// own, of its exact size, released at the next reset: a 9 MiB policy image costs 9 MiB of
// linear memory, not the 16 MiB chunk doubling would reach.
const (
	arenaFirstChunk = 8 << 10
	arenaKeep       = LargeData
)

// LargeData is the size above which host data is not in the arena's reused chunk but in an
// allocation of its own (see Host.GetBuffer).
const LargeData = 1 << 20

// arena hands out the memory the host writes data into (proxy_on_memory_allocate). What it
// hands out stays valid, and reachable by the Go GC, until reset, which the dispatcher calls at
// the start of every callback: data from the host is valid for the callback that asked for
// it, and no longer.
type arena struct {
	chunk   []byte   // current chunk; allocations are carved from chunk[off:]
	off     int      // bytes of chunk handed out in this callback
	retired [][]byte // chunks outgrown during this callback, kept alive until reset
}

// zeroByte backs zero-length allocations, which need a valid pointer but no memory.
var zeroByte [1]byte

// alloc returns n writable bytes.
func (a *arena) alloc(n int) []byte {
	if n <= 0 {
		return zeroByte[:0:0]
	}
	if n > arenaKeep {
		b := make([]byte, n)
		a.retired = append(a.retired, b)
		return b
	}
	if len(a.chunk)-a.off < n {
		if a.off > 0 {
			a.retired = append(a.retired, a.chunk)
		}
		size := max(2*len(a.chunk), arenaFirstChunk)
		for size < n {
			size *= 2
		}
		a.chunk = make([]byte, size)
		a.off = 0
	}
	b := a.chunk[a.off : a.off+n : a.off+n]
	a.off += n
	return b
}

// reset makes every earlier allocation reusable. The current chunk, the largest so far, is
// kept; chunks it outgrew are released to the GC.
func (a *arena) reset() {
	a.off = 0
	clear(a.retired)
	a.retired = a.retired[:0]
}

// trim drops a chunk grown past arenaKeep (by a configuration, typically); the next callback
// starts a small one.
func (a *arena) trim() {
	a.reset()
	if len(a.chunk) > arenaKeep {
		a.chunk = nil
	}
}
