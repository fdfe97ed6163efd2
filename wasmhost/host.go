package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
)

// maxMemoryPages is V8's --wasm_max_mem_pages in Envoy: 16384 pages, 1 GiB.
const maxMemoryPages = 16384

// LoadError is a module Envoy would refuse to run with this configuration. Message is Envoy's
// own log message, verbatim (e.g. "Failed to load Wasm module due to a missing import:
// wasi_snapshot_preview1.path_filestat_get", "Wasm module is missing malloc function.").
type LoadError struct {
	Profile Profile
	// Stage is where it failed: "parse", "abi", "compile", "link", "exports", "initialize",
	// "start" (on_vm_start answered 0 or trapped), "configure" (on_configure answered 0 or
	// trapped), "instantiate".
	Stage   string
	Message string
	Cause   error
}

func (e *LoadError) Error() string {
	msg := fmt.Sprintf("wasmhost: %s: %s: %s", e.Profile, e.Stage, e.Message)
	switch e.Stage {
	case "start", "configure", "initialize":
		msg += " (Envoy rejects the configuration: Unable to create Wasm HTTP filter)"
	}
	if e.Cause != nil {
		msg += ": " + e.Cause.Error()
	}
	return msg
}

func (e *LoadError) Unwrap() error { return e.Cause }

// Host is an Envoy-faithful proxy-wasm host for one plugin: one module, one plugin
// configuration, a canary VM and Options.Workers worker VMs. Its methods are safe for
// concurrent use.
type Host struct {
	opts       *resolved
	rt         wazero.Runtime
	compiled   wazero.CompiledModule
	abi        abiVersion
	lookup     []exportSpec
	mallocName string
	environ    []string

	stats  *statStore
	shared *sharedStore
	logs   *logRing

	workers []*worker
	next    atomic.Uint64
	closed  atomic.Bool
	closeMu sync.Mutex
}

// worker is one Envoy worker thread's VM slot.
type worker struct {
	idx      int
	mu       sync.Mutex
	vm       *vm
	lastLoad time.Time
	reloads  int
	// reloadErr is why the last attempt to replace a failed VM failed (FailReload), "" when
	// it succeeded or none was made.
	reloadErr string
}

// New compiles the module and brings the plugin up as Envoy does: load-time checks (ABI
// marker, imports against the profile's host functions, export signatures, allocator), a base
// VM running _initialize, a canary VM running the root sequence and then discarded, and the
// worker VMs each with _initialize and the root sequence. Any failure Envoy would report
// returns a *LoadError carrying Envoy's message; the same message is in Logs.
func New(ctx context.Context, opts Options) (*Host, error) {
	o, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	h := &Host{
		opts:    o,
		stats:   newStatStore(),
		shared:  newSharedStore(),
		logs:    newLogRing(o.LogCapacity),
		environ: environList(o.Env),
	}
	info, err := h.check(o.Module)
	if err != nil {
		return nil, err
	}
	cache := o.CompilationCache
	if cache == nil {
		cache = wazero.NewCompilationCache()
	}
	h.rt = wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().
		WithMemoryLimitPages(maxMemoryPages).
		WithCompilationCache(cache).
		WithCustomSections(false))
	ok := false
	defer func() {
		if !ok {
			_ = h.rt.Close(ctx)
		}
	}()
	if err := h.buildHostModules(ctx); err != nil {
		return nil, err
	}
	h.compiled, err = h.rt.CompileModule(ctx, o.Module)
	if err != nil {
		return nil, h.loadErr("compile", "Failed to load Wasm bytecode", err)
	}
	if err := h.checkLinkAndExports(info); err != nil {
		return nil, err
	}

	// Base VM (createWasm): _initialize only.
	base, err := h.newVM(ctx, "base")
	if err != nil {
		return nil, err
	}
	started := base.start()
	base.close(ctx)
	if !started {
		return nil, h.loadErr("initialize", "Failed to initialize Wasm code", errors.New(base.failMsg))
	}
	// Canary (WasmHandleBase::canary): init, root sequence, discarded without done/delete.
	canary, err := h.newVM(ctx, "canary")
	if err != nil {
		return nil, err
	}
	if !canary.start() {
		canary.close(ctx)
		return nil, h.loadErr("initialize", "Failed to initialize Wasm code", errors.New(canary.failMsg))
	}
	if msg := canary.startRoot(); msg != "" {
		canary.close(ctx)
		return nil, h.rootErr(msg, canary)
	}
	canary.close(ctx)

	for i := 0; i < o.Workers; i++ {
		v, err := h.spawn(ctx, fmt.Sprintf("worker %d", i))
		if err != nil {
			for _, w := range h.workers {
				w.vm.close(ctx)
			}
			return nil, err
		}
		h.workers = append(h.workers, &worker{idx: i, vm: v, lastLoad: time.Now()})
	}
	ok = true
	return h, nil
}

// spawn creates a worker VM: instantiate, start functions, root sequence.
func (h *Host) spawn(ctx context.Context, label string) (*vm, error) {
	v, err := h.newVM(ctx, label)
	if err != nil {
		return nil, err
	}
	if !v.start() {
		v.close(ctx)
		return nil, h.loadErr("initialize", "Failed to initialize Wasm code", errors.New(v.failMsg))
	}
	if msg := v.startRoot(); msg != "" {
		v.close(ctx)
		if msg == "Failed to start base Wasm" {
			msg = "Failed to start thread-local Wasm"
		} else {
			msg = "Failed to configure thread-local Wasm plugin"
		}
		return nil, h.rootErr(msg, v)
	}
	return v, nil
}

func (h *Host) rootErr(msg string, v *vm) error {
	stage := "configure"
	if msg == "Failed to start base Wasm" || msg == "Failed to start thread-local Wasm" {
		stage = "start"
	}
	var cause error
	if v.failMsg != "" {
		cause = errors.New(v.failMsg)
	} else if stage == "start" {
		cause = errors.New("proxy_on_vm_start answered 0")
	} else {
		cause = errors.New("proxy_on_configure answered 0")
	}
	return h.loadErr(stage, msg, cause)
}

func (h *Host) loadErr(stage, msg string, cause error) error {
	h.logf(LevelError, SourceHost, "base", "%s", msg)
	return &LoadError{Profile: h.opts.Profile, Stage: stage, Message: msg, Cause: cause}
}

// check runs the checks Envoy makes on the bytes before compiling (WasmBase::load): the
// module parses and declares a known ABI version with its first marker export.
func (h *Host) check(module []byte) (*moduleInfo, error) {
	info, err := parseModule(module)
	if err != nil {
		return nil, h.loadErr("parse", "Failed to parse corrupted Wasm module", err)
	}
	for _, e := range info.exports {
		if v, ok := abiMarkers[e.name]; ok && e.kind == externFunc {
			h.abi = v
			break
		}
	}
	if h.abi == abiUnknown {
		return nil, h.loadErr("abi", "Missing or unknown Proxy-Wasm ABI version", nil)
	}
	return info, nil
}

// checkLinkAndExports is V8::link then WasmBase::getFunctions: every import in order against
// the registered host functions, then the known exports' signatures in Envoy's lookup order.
// Envoy logs every bad signature; the first is reported.
func (h *Host) checkLinkAndExports(info *moduleInfo) error {
	if msg := linkMessage(info, h.abi, h.opts.profile); msg != "" {
		return h.loadErr("link", msg, nil)
	}
	msgs, lookup, mallocName := exportMessages(info, h.abi, h.opts.profile)
	h.lookup, h.mallocName = lookup, mallocName
	for _, m := range msgs[min(1, len(msgs)):] {
		h.logf(LevelError, SourceHost, "base", "%s", m)
	}
	if len(msgs) > 0 {
		return h.loadErr("exports", msgs[0], nil)
	}
	return nil
}

// hostFuncSet is every function the host registers for an ABI and profile, by "module.name".
func hostFuncSet(abi abiVersion, p *profileSpec) map[string]signature {
	set := map[string]signature{}
	for _, f := range envHostFuncs(abi) {
		set[f.module+"."+f.name] = f.sig
	}
	for _, n := range p.wasi {
		for _, m := range wasiModules {
			set[m+"."+n] = wasiSignatures[n]
		}
	}
	return set
}

// linkMessage returns V8::link's failure message for the first bad import, or "".
func linkMessage(info *moduleInfo, abi abiVersion, p *profileSpec) string {
	set := hostFuncSet(abi, p)
	for _, imp := range info.imports {
		full := imp.module + "." + imp.name
		switch imp.kind {
		case externFunc:
			sig, ok := set[full]
			if !ok {
				return "Failed to load Wasm module due to a missing import: " + full
			}
			if !sig.equal(imp.sig) {
				return "Failed to load Wasm module due to an import type mismatch: " + full +
					", want: " + valTypesString(imp.sig.params) + " -> " + valTypesString(imp.sig.results) +
					", but host exports: " + valTypesString(sig.params) + " -> " + valTypesString(sig.results)
			}
		case externGlobal:
			return "Failed to load Wasm module due to a missing import: " + full
		case externMemory, externTable:
			// Envoy creates imported memories and tables; the host does not emulate that.
			return "Failed to load Wasm module due to a missing import: " + full + " (wasmhost does not provide imported memories or tables)"
		default:
			return "Failed to load Wasm module due to a missing import: " + full
		}
	}
	return ""
}

// exportMessages returns Envoy's messages for bad export signatures and a missing allocator
// (in WasmBase::getFunctions order), the exports the host will call, and the allocator's name.
func exportMessages(info *moduleInfo, abi abiVersion, p *profileSpec) (msgs []string, lookup []exportSpec, mallocName string) {
	funcs := map[string]signature{}
	for _, e := range info.exports {
		if e.kind == externFunc {
			if _, dup := funcs[e.name]; !dup {
				funcs[e.name] = e.sig
			}
		}
	}
	get := func(spec exportSpec) bool {
		sig, ok := funcs[spec.name]
		if !ok {
			return false
		}
		if !sig.equal(spec.sig) {
			msgs = append(msgs, "Bad function signature for: "+spec.name+
				", want: "+valTypesString(spec.sig.params)+" -> "+valTypesString(spec.sig.results)+
				", but the module exports: "+valTypesString(sig.params)+" -> "+valTypesString(sig.results))
			return false
		}
		lookup = append(lookup, spec)
		return true
	}
	_, hasInit := funcs["_initialize"]
	for _, spec := range startExports(p, hasInit) {
		get(spec)
	}
	// malloc is preferred; proxy_on_memory_allocate only when malloc is absent or unusable.
	switch {
	case get(exportSpec{"malloc", wordCall(1)}):
		mallocName = "malloc"
	case get(exportSpec{"proxy_on_memory_allocate", wordCall(1)}):
		mallocName = "proxy_on_memory_allocate"
	default:
		msgs = append(msgs, "Wasm module is missing malloc function.")
	}
	for _, spec := range callbackExports(abi) {
		get(spec)
	}
	return msgs, lookup, mallocName
}

// Check reports whether Envoy of the given profile would load module, without running it:
// the ABI marker, every import against the profile's host functions and the known exports'
// signatures. It returns nil or a *LoadError with Envoy's message. CI can call it on the built
// module to catch, e.g., a WASI import that Envoy 1.33 to 1.38 lacks.
func Check(module []byte, profile Profile) error {
	if profile == "" {
		profile = Envoy133
	}
	p, ok := profiles[profile]
	if !ok {
		return fmt.Errorf("wasmhost: profile %q: want %q or %q", profile, Envoy133, Envoy139)
	}
	h := &Host{opts: &resolved{Options: Options{Profile: profile}, profile: p}, logs: newLogRing(16)}
	info, err := h.check(module)
	if err != nil {
		return err
	}
	return h.checkLinkAndExports(info)
}

// buildHostModules registers env (for the module's ABI) and the profile's WASI set under both
// WASI module names.
func (h *Host) buildHostModules(ctx context.Context) error {
	env := h.rt.NewHostModuleBuilder("env")
	for _, f := range envHostFuncs(h.abi) {
		impl, ok := envImpls[f.name]
		if !ok {
			return fmt.Errorf("wasmhost: no implementation of env.%s", f.name)
		}
		exportHost(env, "env", f.name, f.sig, impl)
	}
	if _, err := env.Instantiate(ctx); err != nil {
		return fmt.Errorf("wasmhost: instantiate env host module: %w", err)
	}
	impls := wasiImpls(h.opts.profile)
	for _, mod := range wasiModules {
		b := h.rt.NewHostModuleBuilder(mod)
		for _, name := range h.opts.profile.wasi {
			impl, ok := impls[name]
			if !ok {
				return fmt.Errorf("wasmhost: no implementation of %s.%s", mod, name)
			}
			exportHost(b, mod, name, wasiSignatures[name], impl)
		}
		if _, err := b.Instantiate(ctx); err != nil {
			return fmt.Errorf("wasmhost: instantiate %s host module: %w", mod, err)
		}
	}
	return nil
}

// current returns the worker's VM for a new stream, applying the failure policy to a failed
// one (PluginConfig::createContext and maybeReloadHandleIfNeeded). skip means the filter is
// left out of the chain; a nil VM means a failed-closed context.
func (w *worker) current(h *Host) (v *vm, skip bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	v = w.vm
	v.mu.Lock()
	failed := v.failed
	v.mu.Unlock()
	if !failed {
		return v, false
	}
	switch h.opts.FailurePolicy {
	case FailOpen, FailOpenLegacy:
		return nil, true
	case FailReload:
		if time.Since(w.lastLoad) < reloadWait(h.opts.ReloadBackoff) {
			h.logf(LevelDebug, SourceHost, v.label, "VM reload backing off")
			return nil, false
		}
		w.lastLoad = time.Now()
		w.reloads++
		nv, err := h.spawn(context.Background(), fmt.Sprintf("worker %d (reload %d)", w.idx, w.reloads))
		if err != nil {
			h.logf(LevelWarn, SourceHost, v.label, "Failed to reload WASM plugin: %s", h.opts.PluginName)
			w.reloadErr = err.Error()
			return nil, false
		}
		v.close(context.Background())
		w.vm, w.reloadErr = nv, ""
		return nv, false
	}
	return nil, false
}

// reloadWait is the least time since a worker's last load before its failed VM is replaced:
// Envoy's JitteredLowerBoundBackOffStrategy, a draw from [base, 1.5×base) at each stream
// (PluginConfig::maybeReloadHandleIfNeeded); 0 for NoReloadBackoff.
func reloadWait(base time.Duration) time.Duration {
	if base <= 0 {
		return 0
	}
	if half := int64(base / 2); half > 0 {
		base += time.Duration(rand.Int64N(half))
	}
	return base
}

// Close shuts the plugin down: each healthy worker VM gets on_done(R) and, if that answers
// non-zero, on_delete(R); then every VM and the runtime are released. Streams started after
// Close fail closed.
func (h *Host) Close(ctx context.Context) error {
	h.closeMu.Lock()
	defer h.closeMu.Unlock()
	if h.closed.Swap(true) {
		return nil
	}
	for _, w := range h.workers {
		w.mu.Lock()
		w.vm.shutdownRoot()
		w.vm.mu.Lock()
		// Streams still holding this VM fail closed from now on.
		w.vm.failed, w.vm.failMsg = true, "wasmhost: host closed"
		w.vm.close(ctx)
		w.vm.mu.Unlock()
		w.mu.Unlock()
	}
	if err := h.rt.Close(ctx); err != nil {
		return fmt.Errorf("wasmhost: close runtime: %w", err)
	}
	return nil
}

// MemoryBytes returns the size of each worker VM's linear memory, in bytes.
func (h *Host) MemoryBytes() []uint64 {
	out := make([]uint64, len(h.workers))
	for i, w := range h.workers {
		w.mu.Lock()
		out[i] = w.vm.memoryBytes()
		w.mu.Unlock()
	}
	return out
}

// Failed reports, per worker, whether its current VM has failed (trapped) and with what
// message.
func (h *Host) Failed() []string {
	out := make([]string, len(h.workers))
	for i, w := range h.workers {
		w.mu.Lock()
		w.vm.mu.Lock()
		if w.vm.failed {
			out[i] = w.vm.failMsg
		}
		w.vm.mu.Unlock()
		w.mu.Unlock()
	}
	return out
}

// ReloadFailed reports, per worker, why the last attempt to replace its failed VM failed
// (FailReload), or "" when the last attempt succeeded or none was made. Such a worker fails
// its requests until an attempt succeeds; Envoy says so only in its log ("Failed to reload
// WASM plugin"), which this host writes too.
func (h *Host) ReloadFailed() []string {
	out := make([]string, len(h.workers))
	for i, w := range h.workers {
		w.mu.Lock()
		out[i] = w.reloadErr
		w.mu.Unlock()
	}
	return out
}

// ABIVersion is the Proxy-Wasm ABI version the module declares, e.g. "0.2.1".
func (h *Host) ABIVersion() string { return h.abi.String() }

// Profile is the Envoy profile the host reproduces.
func (h *Host) Profile() Profile { return h.opts.Profile }
