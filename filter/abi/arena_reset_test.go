package abi

import "testing"

// nop is a plugin that does nothing.
type nop struct{}

func (nop) OnVMStart(uint32, uint32) bool                 { return true }
func (nop) OnConfigure(uint32, uint32) bool               { return true }
func (nop) OnContextCreate(uint32, uint32)                {}
func (nop) OnRequestHeaders(uint32, uint32, bool) Action  { return Continue }
func (nop) OnResponseHeaders(uint32, uint32, bool) Action { return Continue }
func (nop) OnDone(uint32) bool                            { return true }
func (nop) OnDelete(uint32)                               {}

// TestDispatcherResetsTheArenaEveryCallback: what proxy_on_memory_allocate handed out in one
// callback is handed out again in the next, so host data (header values, pairs, the
// configuration) is valid for the callback that asked for it and no longer. This is what
// abitest's poisoning models; a callback that forgot to reset would let the arena grow.
func TestDispatcherResetsTheArenaEveryCallback(t *testing.T) {
	d := NewDispatcher(nop{}, nil)
	callbacks := map[string]func(){
		"on_context_create":   func() { d.OnContextCreate(2, 1) },
		"on_vm_start":         func() { d.OnVMStart(1, 0) },
		"on_configure":        func() { d.OnConfigure(1, 0) },
		"on_request_headers":  func() { d.OnRequestHeaders(2, 0, 1) },
		"on_response_headers": func() { d.OnResponseHeaders(2, 0, 1) },
		"on_done":             func() { d.OnDone(2) },
		"on_delete":           func() { d.OnDelete(2) },
	}
	for name, callback := range callbacks {
		callback()
		first := d.Allocate(64)
		if other := d.Allocate(64); &other[0] == &first[0] {
			t.Fatalf("%s: two allocations of one callback share memory", name)
		}
		callback()
		if again := d.Allocate(64); &again[0] != &first[0] {
			t.Errorf("%s: the next callback got fresh memory: the arena was not reset", name)
		}
	}
	if b := d.Allocate(0); len(b) != 0 || cap(b) != 0 {
		t.Errorf("Allocate(0) = len %d cap %d, want an empty slice (the export answers &zeroByte)", len(b), cap(b))
	}
}

// TestArenaKeepsOutgrownMemoryReachable: the host holds only raw addresses of what the arena
// handed out, invisible to the Go GC; the arena's own references (the current chunk, chunks
// outgrown and large allocations in retired) keep that memory alive until the next reset.
func TestArenaKeepsOutgrownMemoryReachable(t *testing.T) {
	var a arena
	first := a.alloc(100)
	a.alloc(arenaFirstChunk) // outgrows the first chunk
	large := a.alloc(LargeData + 1)
	held := func(b []byte) bool {
		for _, r := range a.retired {
			if &r[0] == &b[0] {
				return true
			}
		}
		return false
	}
	if !held(first) || !held(large) {
		t.Fatalf("retired holds the outgrown chunk: %v, the large allocation: %v; want both until reset", held(first), held(large))
	}
	a.reset()
	if len(a.retired) != 0 || cap(a.retired) == 0 || a.retired[:cap(a.retired)][0] != nil {
		t.Error("reset kept references to the memory of the last callback")
	}
}
