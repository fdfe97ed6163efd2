package abi

import (
	"runtime"
	"runtime/debug"
)

// The Go garbage collector in a proxy-wasm VM.
//
// An export runs on the one goroutine the host calls into, and the runtime's own goroutines
// (background mark workers, sweeper, scavenger) run only when that goroutine yields. Two
// consequences, both seen in e2e's stress test:
//
//   - Without yielding, a collection cycle advances only through allocation assists, and once
//     the GC CPU limiter switches assists off it is re-evaluated only by the scheduler: the
//     cycle can stay in its mark phase for good while the heap grows (15 MiB to 960 MiB over
//     200,000 streams when requests made garbage).
//   - Yielding lets the scavenger run, and it sleeps on a timer. From then on every
//     stop-the-world polls the network poller through poll_oneoff, which Envoy 1.33–1.38
//     (proxy-wasm-cpp-host before #533) answer ENOSYS: the runtime aborts and the VM is dead.
//
// So the module does three things. The request path makes no garbage (the host-data arena,
// pooled stream records, reused decisions), so in steady state there is nothing to collect.
// While a configuration is compiled, GOGC is raised so that parsing does not run (and stall)
// collection cycles; it is restored afterwards and the garbage is collected by the next cycle.
// And on_vm_start probes the host's poll_oneoff once: where it answers (Envoy >= 1.39) the
// module yields at quiet points (runtime.GC after a configuration, runtime.Gosched at the end
// of each stream), so cycles always complete; where it does not, the module never yields.

// configureGCPercent is GOGC while a configuration is compiled: high enough that parsing does
// not start a cycle (the heap goal is ten thousand times the live heap).
const configureGCPercent = 1_000_000

// gcPolicy applies the above. The zero value does nothing, as in native tests, where the
// runtime is the test binary's own.
type gcPolicy struct {
	managed  bool        // the module's runtime: Register set this
	probe    func() bool // reports whether the host's poll_oneoff works
	probed   bool
	canYield bool // poll_oneoff works: yielding to the runtime's goroutines is safe
}

// vmStarted probes the host once per VM, at the first on_vm_start (poll_oneoff may not be
// called while the module initialises on Envoy 1.33–1.38). It reports whether it probed.
func (g *gcPolicy) vmStarted() bool {
	if !g.managed || g.probed {
		return false
	}
	g.probed = true
	g.canYield = g.probe()
	return true
}

// configuring runs compile (the plugin's on_configure) with collection held off, then lets the
// garbage be collected.
func (g *gcPolicy) configuring(compile func()) {
	if !g.managed {
		compile()
		return
	}
	prev := debug.SetGCPercent(configureGCPercent)
	if prev < 0 {
		// GOGC=off in the VM's environment: the operator wants no collection. Setting it back
		// right away cannot wait for a cycle (the one that would be a yield): none started.
		debug.SetGCPercent(prev)
		compile()
		return
	}
	defer func() {
		debug.SetGCPercent(prev)
		if g.canYield {
			runtime.GC()
		}
	}()
	compile()
}

// streamEnded yields to the runtime's goroutines where that is safe, so that a collection
// cycle in progress completes.
func (g *gcPolicy) streamEnded() {
	if g.canYield {
		runtime.Gosched()
	}
}
