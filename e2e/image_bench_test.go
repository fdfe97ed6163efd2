package e2e_test

import (
	"regexp"
	"strconv"
	"testing"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/testing/cputime"
	"github.com/s3cors/s3cors/internal/testing/testenv"
	"github.com/s3cors/s3cors/wasmhost"
)

// sharedStressConfig is testenv.StressConfig with one origin for every bucket: its buckets
// share three rule lists (one per form), as buckets that follow a few policies do.
func sharedStressConfig(n int) []byte {
	return regexp.MustCompile(`https://a\d+\.example`).ReplaceAll(testenv.StressConfig(n), []byte("https://a.example"))
}

// BenchmarkWasmImageStart is BenchmarkWasmFilterStart (a base VM, a canary and one worker:
// three instantiations, two configures) with the plugin configuration as a policy image
// (form=image), the same wrapped in JSON (form=wrapped) or the JSON document (form=json).
// Against the floor measured first in the same run (form=json, one bucket) it reports each
// VM's share of the configure CPU (vm-configure-ms, the excess over the floor halved) and the
// worker's linear memory beyond the floor as a multiple of the image's size (mem/image).
// rules=distinct gives every bucket rules of its own, rules=shared three rule lists for all.
func BenchmarkWasmImageStart(b *testing.B) {
	module := testenv.ModuleBytes(b)
	start := func(b *testing.B, config []byte) uint64 { return startFilter(b, module, config) }
	var floorCPU, floorMem float64
	measure := func(b *testing.B, config []byte, img int) {
		start(b, config) // compiles the module into the shared cache: not part of the measure
		var mem uint64
		cpu := cputime.Process()
		for b.Loop() {
			mem = start(b, config)
		}
		perOp := float64(cputime.Process()-cpu) / float64(b.N)
		b.ReportMetric(perOp, "cpu-ns/op")
		b.ReportMetric(float64(mem)/(1<<20), "guest-MiB")
		b.ReportMetric(float64(len(config))/(1<<10), "config-KiB")
		if floorCPU == 0 {
			floorCPU, floorMem = perOp, float64(mem)
			return
		}
		b.ReportMetric((perOp-floorCPU)/2/1e6, "vm-configure-ms")
		if img > 0 {
			b.ReportMetric((float64(mem)-floorMem)/float64(img), "mem/image")
		}
	}
	b.Run("buckets=1/rules=distinct/form=json", func(b *testing.B) { measure(b, testenv.StressConfig(1), 0) })
	for _, n := range []int{1, 10000, 100000} {
		for _, rules := range []string{"distinct", "shared"} {
			if n == 1 && rules == "shared" {
				continue
			}
			doc := testenv.StressConfig(n)
			if rules == "shared" {
				doc = sharedStressConfig(n)
			}
			img := testenv.PolicyImage(b, doc)
			prefix := "buckets=" + strconv.Itoa(n) + "/rules=" + rules
			b.Run(prefix+"/form=image", func(b *testing.B) { measure(b, img, len(img)) })
			if n == 10000 && rules == "distinct" {
				b.Run(prefix+"/form=wrapped", func(b *testing.B) { measure(b, evaluator.WrapImage(img), len(img)) })
				b.Run(prefix+"/form=json", func(b *testing.B) { measure(b, doc, 0) })
			}
		}
	}
}

// BenchmarkWasmImageRequest is one allowed preflight through the module (all its callbacks)
// configured with a policy image of 1 to 100,000 buckets with distinct rules, next to the
// JSON configuration of one bucket. spread=1 asks bucket b0 each time; spread=1000 cycles
// through 1,000 buckets, whose rule sets stay compiled.
func BenchmarkWasmImageRequest(b *testing.B) {
	for _, n := range []int{1, 10000, 100000} {
		doc := testenv.StressConfig(n)
		forms := map[string][]byte{"image": testenv.PolicyImage(b, doc)}
		if n == 1 {
			forms["json"] = doc
		}
		for _, form := range []string{"json", "image"} {
			config := forms[form]
			if config == nil {
				continue
			}
			h := newFilterHost(b, wasmhost.Envoy133, config)
			for _, spread := range []int{1, 1000} {
				if spread > n {
					continue
				}
				reqs := make([]wasmhost.Headers, spread)
				for i := range reqs {
					reqs[i] = wasmhost.Headers{{":method", "OPTIONS"}, {":authority", "s3.internal"},
						{":path", "/b" + strconv.Itoa(i) + "/photos/cat.jpg"}, {"origin", "https://a" + strconv.Itoa(i) + ".example"},
						{"access-control-request-method", "PUT"}, {"access-control-request-headers", "content-type, x-amz-meta-owner"}}
				}
				b.Run("buckets="+strconv.Itoa(n)+"/form="+form+"/spread="+strconv.Itoa(spread), func(b *testing.B) {
					i := 0
					run := func() {
						s := h.NewStream()
						if r := s.RequestHeaders(reqs[i], true); r.Action != wasmhost.Replied || r.Reply.Status != 200 {
							b.Fatalf("%s: %s, want a 200 reply", reqs[i][2][1], r.Action)
						}
						s.Done()
						if i++; i == len(reqs) {
							i = 0
						}
					}
					for range reqs {
						run()
					}
					cpu := cputime.Process()
					for b.Loop() {
						run()
					}
					b.ReportMetric(float64(cputime.Process()-cpu)/float64(b.N), "cpu-ns/op")
				})
			}
		}
	}
}
