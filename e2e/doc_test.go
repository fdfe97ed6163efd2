// Package e2e_test drives the built artefacts from outside, as users run them: the wasm module
// in real Envoy (every release pinned in tools/envoy/releases.txt) and in wasmhost, the
// ext_proc server over gRPC and behind real Envoy, the CLI's processes (serve, extproc,
// controlplane), and a real browser (headless Chromium) against the gateway.
//
// Every prerequisite is built or fetched by the tests themselves (internal/testing/testenv);
// a missing Envoy, module or Chromium fails a test with how to get it, never skips it: a
// skipped test looks like a passing one. The real-Envoy suites run the same drivers against
// wasmhost, so that where the two disagree the model is fixed.
//
// Where it sits: tests only; it may import anything in the repository, and nothing imports it.
package e2e_test
