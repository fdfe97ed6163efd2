package abi

import (
	"runtime/debug"
	"testing"
)

func TestGCPolicyInactiveByDefault(t *testing.T) {
	var g gcPolicy
	g.vmStarted()
	ran := false
	g.configuring(func() { ran = true })
	g.streamEnded()
	if !ran || g.probed || g.canYield {
		t.Errorf("zero gcPolicy: compiled %v, probed %v, canYield %v; want true, false, false", ran, g.probed, g.canYield)
	}
}

func TestGCPolicyProbesOncePerVM(t *testing.T) {
	calls := 0
	g := gcPolicy{managed: true, probe: func() bool { calls++; return true }}
	g.vmStarted()
	g.vmStarted() // a second plugin in the same VM
	if calls != 1 || !g.canYield {
		t.Errorf("probe called %d times, canYield %v; want 1, true", calls, g.canYield)
	}
}

// While a configuration compiles, GOGC is raised so that parsing starts no collection cycle;
// afterwards it is what it was, whether or not the host lets the module yield.
func TestGCPolicyHoldsCollectionOffWhileConfiguring(t *testing.T) {
	for _, canYield := range []bool{false, true} {
		g := gcPolicy{managed: true, probe: func() bool { return canYield }}
		g.vmStarted()
		orig := debug.SetGCPercent(100)
		var during int
		g.configuring(func() {
			during = debug.SetGCPercent(configureGCPercent) // read it (and keep it)
		})
		after := debug.SetGCPercent(orig)
		if during != configureGCPercent || after != 100 {
			t.Errorf("canYield=%v: GOGC %d while configuring and %d after, want %d and 100", canYield, during, after, configureGCPercent)
		}
	}
}

// GOGC=off in the VM's environment stays off: no collection at all, as the operator asked.
func TestGCPolicyKeepsGOGCOff(t *testing.T) {
	g := gcPolicy{managed: true, probe: func() bool { return false }}
	g.vmStarted()
	orig := debug.SetGCPercent(-1)
	defer debug.SetGCPercent(orig)
	var during int
	g.configuring(func() { during = debug.SetGCPercent(-1) })
	if during != -1 {
		t.Errorf("GOGC while configuring = %d, want -1 (off)", during)
	}
}
