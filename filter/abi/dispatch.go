package abi

import (
	"fmt"
	"runtime/debug"
)

// Dispatcher is the body of every exported callback: it resets the per-callback memory,
// forwards to the Plugin and turns a panic into a log line and a harmless result, because an
// unrecovered panic traps and Envoy then marks the worker's VM failed for every later request.
//
// The module's exports use one package-level Dispatcher set up by Register; tests drive a
// Plugin natively through NewDispatcher.
type Dispatcher struct {
	plugin Plugin
	host   Host
	mem    arena
	gc     gcPolicy // inactive unless Register set it up for the module's runtime (gc.go)
}

// PanicObserver may be implemented by a Plugin that wants to count the panics the dispatcher
// recovered from (for a metric); it is called after the panic has been logged.
type PanicObserver interface {
	RecoveredPanic(callback string)
}

// NewDispatcher returns a dispatcher calling p, logging recovered panics through h.
func NewDispatcher(p Plugin, h Host) *Dispatcher {
	return &Dispatcher{plugin: p, host: h}
}

// Allocate returns size writable bytes for the host to copy data into; they stay valid until
// the next callback starts. It backs proxy_on_memory_allocate and never fails short of the Go
// runtime running out of memory.
func (d *Dispatcher) Allocate(size uint32) []byte {
	return d.mem.alloc(int(size))
}

// OnContextCreate dispatches proxy_on_context_create.
func (d *Dispatcher) OnContextCreate(ctx, parent uint32) {
	d.mem.reset()
	if d.plugin == nil {
		return
	}
	defer d.recover("proxy_on_context_create", nil)
	d.plugin.OnContextCreate(ctx, parent)
}

// OnVMStart dispatches proxy_on_vm_start; 1 means started. Without a registered plugin, or on
// a panic, the VM refuses to start.
func (d *Dispatcher) OnVMStart(root, vmConfigSize uint32) (ok uint32) {
	d.mem.reset()
	if d.plugin == nil {
		d.log(LogCritical, "abi: no plugin registered: the module's main package must call abi.Register in init")
		return 0
	}
	if d.gc.vmStarted() {
		if d.gc.canYield {
			d.log(LogDebug, "abi: the host's poll_oneoff works: the Go runtime may run at quiet points")
		} else {
			d.log(LogDebug, "abi: the host's poll_oneoff fails (Envoy 1.33-1.38): the module never yields to the Go runtime")
		}
	}
	defer d.recover("proxy_on_vm_start", func() { ok = 0 })
	return boolWord(d.plugin.OnVMStart(root, vmConfigSize))
}

// OnConfigure dispatches proxy_on_configure; 1 means the configuration was accepted. On a
// panic the configuration is refused: the filter fails closed at configure time. Compiling a
// configuration is the one moment the module makes garbage in quantity: the GC policy holds
// collection off meanwhile and collects afterwards, and the arena lets go of a chunk grown to
// the configuration's size.
func (d *Dispatcher) OnConfigure(root, pluginConfigSize uint32) (ok uint32) {
	d.mem.reset()
	if d.plugin == nil {
		return 0
	}
	defer d.mem.trim()
	d.gc.configuring(func() {
		defer d.recover("proxy_on_configure", func() { ok = 0 })
		ok = boolWord(d.plugin.OnConfigure(root, pluginConfigSize))
	})
	return ok
}

// OnRequestHeaders dispatches proxy_on_request_headers. On a panic the request continues
// untouched.
func (d *Dispatcher) OnRequestHeaders(ctx, numHeaders, endOfStream uint32) (a Action) {
	d.mem.reset()
	if d.plugin == nil {
		return Continue
	}
	defer d.recover("proxy_on_request_headers", func() { a = Continue })
	return d.plugin.OnRequestHeaders(ctx, numHeaders, endOfStream != 0)
}

// OnResponseHeaders dispatches proxy_on_response_headers. On a panic the response continues
// as it is.
func (d *Dispatcher) OnResponseHeaders(ctx, numHeaders, endOfStream uint32) (a Action) {
	d.mem.reset()
	if d.plugin == nil {
		return Continue
	}
	defer d.recover("proxy_on_response_headers", func() { a = Continue })
	return d.plugin.OnResponseHeaders(ctx, numHeaders, endOfStream != 0)
}

// OnDone dispatches proxy_on_done; 1 lets the host delete the context now.
func (d *Dispatcher) OnDone(ctx uint32) (done uint32) {
	d.mem.reset()
	if d.plugin == nil {
		return 1
	}
	defer d.recover("proxy_on_done", func() { done = 1 })
	return boolWord(d.plugin.OnDone(ctx))
}

// OnDelete dispatches proxy_on_delete.
func (d *Dispatcher) OnDelete(ctx uint32) {
	d.mem.reset()
	if d.plugin == nil {
		return
	}
	// The end of a context is the quiet point to let a collection cycle progress.
	defer d.gc.streamEnded()
	defer d.recover("proxy_on_delete", nil)
	d.plugin.OnDelete(ctx)
}

// recover is deferred by every dispatch method: it stops a panic, logs it with its stack and
// lets fallback set the callback's result.
func (d *Dispatcher) recover(callback string, fallback func()) {
	v := recover()
	if v == nil {
		return
	}
	if fallback != nil {
		fallback()
	}
	// Logging and observing must not panic in turn: that would trap after all.
	defer func() { _ = recover() }()
	d.log(LogCritical, fmt.Sprintf("abi: %s: recovered from panic: %v\n%s", callback, v, debug.Stack()))
	if o, ok := d.plugin.(PanicObserver); ok {
		o.RecoveredPanic(callback)
	}
}

func (d *Dispatcher) log(level LogLevel, msg string) {
	if d.host != nil {
		_ = d.host.Log(level, msg)
	}
}

func boolWord(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}
