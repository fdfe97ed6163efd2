package abi

import "testing"

func TestArenaKeepsEveryAllocationOfACallbackDistinct(t *testing.T) {
	var a arena
	var bufs [][]byte
	for i, n := range []int{1, 100, arenaFirstChunk, 3, 70000, 5000, 20000} {
		b := a.alloc(n)
		if len(b) != n || cap(b) != n {
			t.Fatalf("alloc(%d): len %d cap %d", n, len(b), cap(b))
		}
		for j := range b {
			b[j] = byte(i + 1)
		}
		bufs = append(bufs, b)
	}
	for i, b := range bufs {
		for _, c := range b {
			if c != byte(i+1) {
				t.Fatalf("allocation %d was overwritten by a later one", i)
			}
		}
	}
}

// Once the chunk has grown to what a callback needs, callbacks allocate nothing: the
// allocator must not make garbage on the request path.
func TestArenaReusesItsChunkAfterReset(t *testing.T) {
	var a arena
	a.alloc(100)
	a.alloc(arenaFirstChunk) // outgrows the first chunk
	a.alloc(70000)           // and the second
	a.reset()
	if len(a.retired) != 0 {
		t.Fatalf("after reset: %d retired chunks kept", len(a.retired))
	}
	chunk := &a.chunk[0]
	allocs := testing.AllocsPerRun(100, func() {
		a.reset()
		a.alloc(200)
		a.alloc(3000)
		a.alloc(70000)
	})
	if allocs != 0 {
		t.Errorf("steady state: %v allocations per callback, want 0", allocs)
	}
	if &a.chunk[0] != chunk {
		t.Error("the chunk was replaced although it was large enough")
	}
}

func TestArenaTrimDropsAConfigurationSizedChunk(t *testing.T) {
	var a arena
	a.alloc(100)
	a.trim()
	if a.chunk == nil {
		t.Error("trim dropped a small chunk")
	}
	for range 3 {
		a.alloc(arenaKeep/2 + 1) // grows the chunk past arenaKeep
	}
	a.trim()
	if a.chunk != nil {
		t.Errorf("trim kept a %d-byte chunk", len(a.chunk))
	}
}

// Data larger than arenaKeep gets memory of its own, of its size, not a doubled chunk.
func TestArenaGivesLargeDataItsOwnAllocation(t *testing.T) {
	var a arena
	a.alloc(100)
	chunk := &a.chunk[0]
	b := a.alloc(9 << 20)
	if len(b) != 9<<20 || cap(b) != 9<<20 || &a.chunk[0] != chunk {
		t.Fatalf("a %d-byte allocation (capacity %d) replaced the chunk: %v", len(b), cap(b), &a.chunk[0] != chunk)
	}
	a.reset()
	if len(a.retired) != 0 {
		t.Error("reset kept the large allocation")
	}
}

func TestArenaZeroSize(t *testing.T) {
	var a arena
	if b := a.alloc(0); len(b) != 0 {
		t.Fatalf("alloc(0) has length %d", len(b))
	}
}
