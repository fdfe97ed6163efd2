//go:build !race

// Byte and allocation bounds do not hold under the race detector, which instruments every
// allocation: these tests are built only without it (make test runs them; its -race runs
// leave them out).

package e2e_test

import (
	"context"
	"testing"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/wasmhost"
)

// TestHostileWasmWorkBounded: the corpus, run again and again, leaves the guest's linear memory
// where the first run left it, and the host allocates per stream in proportion to the
// request's size.
func TestHostileWasmWorkBounded(t *testing.T) {
	h := hostileFilterHost(t, hostileConfig(t), wasmhost.Options{})
	cases := hostileCases()
	run := func() {
		for _, c := range cases {
			if _, err := wasmExchange(h, c.req, hostileUpstream); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		}
	}
	// Go's heap in the guest grows its linear memory to the high-water mark of the heap and
	// never gives it back; that settles after some runs. A leak of even a fraction of each
	// request would add megabytes per run of the corpus (1.1 MB of requests).
	for range 10 {
		run()
	}
	warm := h.MemoryBytes()[0]
	for range 20 {
		run()
	}
	if after := h.MemoryBytes()[0]; after > warm+warm/2 {
		t.Errorf("guest memory grew from %d to %d bytes over 20 more runs of the corpus", warm, after)
	}
	for _, c := range cases {
		if c.req.size() < 8<<10 {
			continue
		}
		per := allocatedPerCall(t, 10, func() {
			if _, err := wasmExchange(h, c.req, hostileUpstream); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		})
		limit := uint64(16*c.req.size() + 256<<10)
		t.Logf("%s: %d bytes in, %d bytes allocated by the host per stream (limit %d)", c.name, c.req.size(), per, limit)
		if per > limit {
			t.Errorf("%s: the host allocated %d bytes per stream for a %d-byte request; want at most %d", c.name, per, c.req.size(), limit)
		}
	}
	checkNoTrap(t, h)
}

// TestHostileExtprocWorkBounded checks that the bytes the process allocates for one stream
// (client, transport and server together) grow with the request's size and no faster: a
// 170 KB Access-Control-Request-Headers of 10,000 names costs a small multiple of its size,
// not of its square.
func TestHostileExtprocWorkBounded(t *testing.T) {
	s := startExtproc(t, hostileConfig(t))
	for _, c := range hostileCases() {
		if c.req.size() < 8<<10 {
			continue
		}
		per := allocatedPerCall(t, 20, func() {
			if _, err := extprocExchange(t.Context(), s.client, c.req, hostileUpstream); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		})
		// A stream on loopback costs some tens of KB whatever the request; on top of that the
		// value is copied a bounded number of times (marshal, transport, unmarshal, echo).
		limit := uint64(16*c.req.size() + 512<<10)
		t.Logf("%s: %d bytes in, %d bytes allocated per stream (limit %d)", c.name, c.req.size(), per, limit)
		if per > limit {
			t.Errorf("%s: %d bytes allocated per stream for a %d-byte request; want at most %d", c.name, per, c.req.size(), limit)
		}
	}
}

// TestHostileEvaluatorWorkBounded: a reused Decision makes every hostile request free of
// allocations, and a fresh one grows its buffers in proportion to the request, never more.
func TestHostileEvaluatorWorkBounded(t *testing.T) {
	pol, err := evaluator.Load(hostileConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range hostileCases() {
		req := c.req.evaluatorRequest()
		var d evaluator.Decision
		if n := testing.AllocsPerRun(20, func() { pol.Evaluate(req, &d) }); n != 0 {
			t.Errorf("%s: %.1f allocations per request with a reused Decision, want 0", c.name, n)
		}
		fresh := allocatedPerCall(t, 10, func() {
			var d evaluator.Decision
			pol.Evaluate(req, &d)
		})
		// A fresh Decision holds the lower-cased names, their offsets and the reply: a few
		// times the request, plus the Decision itself.
		if limit := uint64(8*c.req.size() + 16<<10); fresh > limit {
			t.Errorf("%s: a fresh Decision allocates %d bytes for a %d-byte request; want at most %d", c.name, fresh, c.req.size(), limit)
		}
	}
}

// TestHostileModuleHeader: a module of a few bytes must cost a few bytes to refuse, whatever
// counts its header claims. The module below (found by FuzzParseModule, kept in
// wasmhost/testdata/fuzz/FuzzParseModule/e645fabc21e49c65) declares 100 million function types
// in a 20-byte file; a loader that sizes its tables by the claim before reading them allocates
// gigabytes, which is what killed the fuzzing worker.
func TestHostileModuleHeader(t *testing.T) {
	module := []byte("\x00asm\x01\x00\x00\x00\x01\x04\xe7\x89\xc6/\x83\xfb0000")
	per := allocatedPerCall(t, 3, func() {
		h, err := wasmhost.New(context.Background(), wasmhost.Options{Module: module})
		if err == nil {
			_ = h.Close(context.Background())
			t.Fatal("a corrupt module was accepted")
		}
	})
	if per > 1<<20 {
		t.Errorf("refusing a %d-byte module allocated %d bytes", len(module), per)
	}
}
