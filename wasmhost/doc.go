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
// ("Envoy-faithful wasm host") lists every behaviour, its source, and what is left out.
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
