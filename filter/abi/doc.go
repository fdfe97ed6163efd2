// Package abi is s3cors' own thin binding of the proxy-wasm ABI v0.2.1, as Envoy (>= 1.33) and
// Istio (>= 1.25) implement it, for modules built by the standard Go toolchain
// (GOOS=wasip1 -buildmode=c-shared, go:wasmexport / go:wasmimport).
//
// The package has two halves:
//
//   - Host is the small set of host calls a plugin needs (headers, buffers, local replies,
//     metrics, logs). In the wasm build, ProxyHost implements it on the env.proxy_* imports; in
//     tests, package abitest implements it natively with Envoy's semantics.
//   - Plugin is what the exported proxy_on_* callbacks call into. Register installs one from a
//     package init; the exports recover every panic (log, then carry on), so a plugin bug
//     never traps the VM.
//
// Everything that touches wasm memory lives in files built only for wasip1; the rest (enums,
// the header-pairs codec, the dispatch and allocator logic) builds everywhere, so it is tested
// natively.
//
// Where it sits: under the filter, and imports nothing of this repository; test guests of
// wasmhost may call the ABI directly but share no code with it.
//
// # Where s3cors uses unsafe
//
// unsafe appears only at the ABI boundary, in the module's arena and in the evaluator's scratch,
// and never hides a pointer from the GC: every address the host holds is also held by a Go
// value. Each use below names who owns the bytes, until when, and the test that fails if that
// breaks (TestUnsafeInventory fails on a file importing unsafe that is not listed here).
//
//	evaluator/address.go, evaluate.go, fixed.go, reply.go
//	    Decision.Bucket, Key, header values, ids and error body are strings over the Decision's
//	    scratch. Owner: the Decision, until the next Evaluate on it; callers only read them and
//	    copy what they keep; within one Evaluate the scratch is only appended to, except that
//	    the attribution rule cuts it back after each throwaway reading (otherReading).
//	    Guard: evaluator TestScratchStringsLiveUntilTheNextEvaluate, TestRequestIDs,
//	    TestOtherReadingsDoNotGrowTheScratch.
//	evaluator/swar.go bytesOf
//	    A read-only []byte view of a request string for word loads; never written (a literal's
//	    bytes are read-only memory, so a write faults in every evaluator test).
//	evaluator/image_load.go LoadImage
//	    The image becomes the Policy's string storage, used in place: the caller hands it over
//	    and never changes it. The filter copies a configuration that lives in its arena.
//	    Guard: filter TestImageCaseTable (abitest poisons it), TestLargeImageIsKeptWithoutCopy.
//	filter/plugin.go stream.save, logDenied, logAmbiguous, readRequest
//	    A stream's response headers are copied into its own buffer, sized first so appending
//	    never moves it; valid until the stream's next request or its deletion. Log lines view
//	    the plugin's line buffer only for the proxy_log call, which copies them. Repeated
//	    Forwarded lines joined in the plugin's buffer are read within the request callback.
//	    Guard: filter TestInterleavedStreamsKeepTheirOwnHeaders, TestCaseTable,
//	    TestDeniedPreflightIsLoggedAtDebug, TestRepeatedForwardedLinesAreAllRead.
//	filter/abi/exports_wasip1.go proxyOnMemoryAllocate
//	    Arena memory handed to the host to write into; the arena holds it (chunk or retired)
//	    until the reset at the start of the next callback; size 0 gets zeroByte.
//	    Guard: TestArenaKeepsOutgrownMemoryReachable, TestDispatcherResetsTheArenaEveryCallback,
//	    TestArenaKeepsEveryAllocationOfACallbackDistinct.
//	filter/abi/host_wasip1.go result, pairs.go bytesString
//	    Host results (retData, a typed *byte the GC sees) and decoded pairs view the arena: valid
//	    for the callback that asked. Guard: abitest TestHostDataIsPoisonedAfterItsCallback (every
//	    plugin test then fails on a kept view), TestPairsRoundTrip, e2e TestWasmFilterStress.
//	filter/abi/host_wasip1.go stringPtr, bytesPtr; imports_wasip1.go; poll_wasip1.go
//	    Addresses of Go memory passed to a host call, read or written by the host during that
//	    call only; the argument (or package variable) keeps it alive. Guard: e2e
//	    TestWasmFilterCaseTable (every header and reply crosses), TestWasmFilterGCMode.
//	filter/abi/abitest/abitest.go
//	    The test host returns header values over copies it poisons after the callback, as the
//	    arena would be reused. Guard: TestHostDataIsPoisonedAfterItsCallback.
//	wasmhost/testdata/guests/, wasmhost/testdata/guestabi/
//	    Test guests calling the ABI directly; wasm memory only, never in a product build.
package abi
