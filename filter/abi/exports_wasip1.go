//go:build wasip1

package abi

import "unsafe"

// The module's exports, with exactly the wasm types Envoy checks (spec proxy-wasm-envoy.md
// §1.2). Only the callbacks the plugin needs are exported: a missing callback is simply not
// called, while an export with a wrong type fails the load. Request and response bodies are
// never buffered or inspected, so no body callback is exported and bodies stream through.

// module is the dispatcher behind the module's exports.
var module Dispatcher

// Register installs the module's plugin behind the exported callbacks and takes over the Go
// garbage collector (see gc.go). Call it from an init function of the module's main package:
// it makes no host call (Envoy allows none but proxy_log while the module initialises).
func Register(p Plugin) {
	module = Dispatcher{plugin: p, host: ProxyHost(), gc: gcPolicy{managed: true, probe: pollOneoffWorks}}
}

// proxyABIVersion is the ABI marker: Envoy looks for the name and never calls it.
//
//go:wasmexport proxy_abi_version_0_2_1
func proxyABIVersion() {}

// proxyOnMemoryAllocate is the allocator the host copies data into (no malloc is exported:
// Envoy would prefer it). It runs under Envoy's allocator allow-list, so it must not call the
// host; the arena only makes Go allocations.
//
//go:wasmexport proxy_on_memory_allocate
func proxyOnMemoryAllocate(size uint32) unsafe.Pointer {
	b := module.Allocate(size)
	if cap(b) == 0 {
		return unsafe.Pointer(&zeroByte[0])
	}
	return unsafe.Pointer(unsafe.SliceData(b))
}

//go:wasmexport proxy_on_context_create
func proxyOnContextCreate(ctx, parent uint32) { module.OnContextCreate(ctx, parent) }

//go:wasmexport proxy_on_vm_start
func proxyOnVMStart(root, vmConfigSize uint32) uint32 { return module.OnVMStart(root, vmConfigSize) }

//go:wasmexport proxy_on_configure
func proxyOnConfigure(root, pluginConfigSize uint32) uint32 {
	return module.OnConfigure(root, pluginConfigSize)
}

//go:wasmexport proxy_on_request_headers
func proxyOnRequestHeaders(ctx, numHeaders, endOfStream uint32) Action {
	return module.OnRequestHeaders(ctx, numHeaders, endOfStream)
}

//go:wasmexport proxy_on_response_headers
func proxyOnResponseHeaders(ctx, numHeaders, endOfStream uint32) Action {
	return module.OnResponseHeaders(ctx, numHeaders, endOfStream)
}

//go:wasmexport proxy_on_done
func proxyOnDone(ctx uint32) uint32 { return module.OnDone(ctx) }

//go:wasmexport proxy_on_delete
func proxyOnDelete(ctx uint32) { module.OnDelete(ctx) }
