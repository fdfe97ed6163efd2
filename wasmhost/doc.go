// Package wasmhost is an Envoy-faithful proxy-wasm host on wazero: it runs a proxy-wasm HTTP
// filter module the way Envoy 1.33-1.38 (profile envoy-1.33) or Envoy 1.39 and later
// (envoy-1.39) would, so that a module can be tested, benchmarked and served locally without
// an Envoy binary.
//
// Faithful means Envoy's behaviour, read in proxy-wasm-cpp-host and Envoy's wasm extension,
// not a convenient reading of the ABI: Envoy's own WASI functions with their errnos (never
// wazero's), its load-time checks and messages, the restricted-callback windows, the VM
// lifecycle (base VM, canary, one VM per worker), deferred local replies that go back through
// the plugin's own response callbacks, the filter statuses a callback's answer maps to, which
// maps and buffers are readable when, and the failure policies after a trap. RATIONALE.md
// ("Envoy-faithful wasm host") says why, and which Envoy behaviours were verified on real Envoy.
//
// Where it sits: a black box on wazero. It imports only wazero and the standard library, never
// this repository's code (depguard in .golangci.yml), so a mistake mirrored in filter and host
// stays unlikely; internal/gateway runs the built module in it, and e2e holds it to real Envoy.
//
// # Loading
//
// New follows WasmBase::load, V8::link and WasmBase::getFunctions in order: the module must parse;
// the first export named proxy_abi_version_0_1_0, 0_2_0 or 0_2_1 sets the ABI; every import, in
// import order, must be a host function of that ABI and profile with the exact type (an imported
// global counts as missing); then the known exports are looked up with strict signatures, malloc
// before proxy_on_memory_allocate. Each failure carries Envoy's message. Host function types are
// cpp-host's, including two that differ from the WASI standard (path_link takes 6 parameters,
// path_symlink 4). Memory is capped at 16384 pages. The host calls _initialize, then main(0,0) or
// (1.39) __main_void, or _start without _initialize, under the start allow-list; a call outside an
// allow-list traps with restricted_callback. Check runs the same checks without running anything.
//
// # VMs and lifecycle
//
// A base VM runs _initialize only; a canary per configuration and then one VM per worker run
// _initialize, on_context_create(1,0), on_vm_start and on_configure. A 0 from on_vm_start or
// on_configure fails New with Envoy's message. Context ids count from 1 per VM and are never
// reused. The plugin configuration is readable only in the root on_context_create and in
// on_configure. Callbacks on one VM are serialized, as on an Envoy worker thread. Departures: a
// trap in the root sequence, or a worker start failing after the canary succeeded, fails New;
// one plugin per VM.
//
// # Streams
//
// A Stream is Envoy's Context plus what one filter can observe of the filter manager. Raw answers
// map as Envoy's converters do (headers: 0 and 2 continue, 3 StopAllIterationAndBuffer, others
// StopAllIterationAndWatermark; data: 1 buffers, 2 watermarks, 3 and above stop). After a
// callback answers Continue its map or buffer is gone (BadArgument); while stopped, body frames
// are buffered up to BufferLimit (Envoy's 1 MiB), beyond which the stream gets 413 (request) or
// 500 (response). proxy_continue_stream, proxy_close_stream and proxy_send_local_response act
// after the callback returns.
//
// # Not emulated
//
// No clusters (proxy_http_call answers BadArgument, gRPC calls ParseFailure), no DNS, of the
// foreign functions only clear_route_cache, no on_queue_ready, a subset of properties, no
// capability restriction, one plugin per VM, no CPU limit. Metrics live in one host-wide store.
//
// # HTTP adapter
//
// Handler maps an http.Request to the header map an Envoy codec builds (pseudo-headers, then the
// headers lower-cased and sorted by name, hop-by-hop headers dropped) and back. Bodies stream in
// 64 KiB chunks. Envoy's request additions are left out so an untouched request reaches the
// upstream unchanged; its response additions come with Options.EnvoyHeaders. A stream held past
// StreamIdleTimeout gets Envoy's 408; a panic inside the host becomes a 500.
//
// A Host is one plugin: New compiles the module, checks it, runs the canary and starts the
// workers; Host.NewStream drives one HTTP exchange callback by callback; Host.Handler serves
// HTTP through the plugin to an upstream handler.
//
//	h, err := wasmhost.New(ctx, wasmhost.Options{Module: wasm, PluginConfig: cfg})
//	if err != nil {
//		return err // a *LoadError carries Envoy's message, e.g. a missing import
//	}
//	defer h.Close(ctx)
//	s := h.NewStream()
//	r := s.RequestHeaders(wasmhost.Headers{{":method", "OPTIONS"}, {":path", "/b/k"},
//		{":authority", "s3.example.com"}, {"origin", "https://app.example"}}, true)
//	if r.Action == wasmhost.Replied {
//		fmt.Println(r.Reply.Status, r.Reply.Headers)
//	}
//	s.Done()
package wasmhost
