package wasmhost

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// vmKey carries the *vm in the context.Context of every guest call, so that host functions,
// which wazero shares across instances of one runtime, find the VM that called them.
type vmKey struct{}

// trapError is how a host function makes the guest trap. wazero offers host functions no other
// way to abort the calling guest than a panic, which it recovers at the boundary of the
// enclosing Call and returns as an error; V8 does the same with a returned wasm::Trap.
type trapError struct{ msg string }

func (e *trapError) Error() string { return e.msg }

// callContext is a proxy-wasm context inside one VM: the VM context (id 0, used for
// _initialize and the allocator), the root context of the plugin, or a stream's context.
type callContext struct {
	id       uint32
	parentID uint32
	root     bool
	stream   *Stream // set for stream contexts
	// pluginConfig: the plugin configuration is readable (cpp-host's temp_plugin_ is set).
	pluginConfig bool
	// Callout status (proxy_get_status); there are no callouts here, so it stays 0/"".
	statusCode    uint32
	statusMessage string
}

// vm is one instance of the module: Envoy's WasmBase with its V8 instance.
type vm struct {
	host  *Host
	spec  *profileSpec
	label string // "base", "canary", "worker 0", ...
	mod   api.Module
	mem   api.Memory
	ctx   context.Context

	exports    map[string]api.Function
	malloc     api.Function
	mallocName string

	// mu serializes every call into the VM: Envoy runs each worker's VM on one thread.
	mu sync.Mutex

	failed  bool
	failMsg string

	nextID   uint32
	contexts map[uint32]*callContext
	vmCtx    *callContext
	rootCtx  *callContext

	// State of the call in progress (cpp-host's current_context_, effective_context_id_,
	// the restricted-callback allow-list, after-VM-call actions and stop_iteration_).
	current    *callContext
	effective  uint32
	restricted map[string]bool
	after      []func()
	stopIter   bool
	stacks     [][]uint64
	depth      int
	// args are the arguments of the proxy_* host call in progress; a host call made while
	// another runs (from the guest allocator) saves and restores them.
	args hostArgs

	metrics     map[uint32]*stat
	nextMetric  [3]uint32
	rootPending bool // on_done(root) answered 0: waiting for proxy_done

	tickPeriod time.Duration
	tickStop   chan struct{}
}

// newVM instantiates the compiled module without running any start function; call start next.
func (h *Host) newVM(ctx context.Context, label string) (*vm, error) {
	v := &vm{
		host:     h,
		spec:     h.opts.profile,
		label:    label,
		exports:  map[string]api.Function{},
		contexts: map[uint32]*callContext{},
		metrics:  map[uint32]*stat{},
		nextID:   1,
		// Envoy's next_*_metric_id_ start at the type, so the first ids are 4, 5 and 6.
		nextMetric: [3]uint32{metricCounter, metricGauge, metricHistogram},
	}
	v.ctx = context.WithValue(context.Background(), vmKey{}, v)
	v.vmCtx = &callContext{id: 0}
	v.contexts[0] = v.vmCtx
	mod, err := h.rt.InstantiateModule(ctx, h.compiled, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		return nil, &LoadError{Profile: h.opts.Profile, Stage: "instantiate", Message: "Failed to create new Wasm instance", Cause: err}
	}
	v.mod = mod
	v.mem = mod.Memory()
	if v.mem == nil {
		_ = mod.Close(ctx)
		return nil, &LoadError{Profile: h.opts.Profile, Stage: "instantiate", Message: "Failed to create new Wasm instance", Cause: errors.New("module has no memory")}
	}
	for _, e := range h.lookup {
		if fn := mod.ExportedFunction(e.name); fn != nil {
			v.exports[e.name] = fn
		}
	}
	v.mallocName = h.mallocName
	v.malloc = v.exports[h.mallocName]
	return v, nil
}

// start runs the start functions as WasmBase::startVm does: under the start allow-list,
// _initialize then main(0,0) (or __main_void), or _start when there is no _initialize.
func (v *vm) start() bool {
	v.restricted = v.spec.startAllowed
	defer func() { v.restricted = nil }()
	if _, ok := v.exports["_initialize"]; ok {
		if _, ok := v.call("_initialize", v.vmCtx); !ok {
			return false
		}
		if _, ok := v.exports["main"]; ok {
			_, ok := v.call("main", v.vmCtx, 0, 0)
			return ok
		}
		if _, ok := v.exports["__main_void"]; ok && v.spec.mainVoid {
			_, ok := v.call("__main_void", v.vmCtx)
			return ok
		}
		return true
	}
	if _, ok := v.exports["_start"]; ok {
		_, ok := v.call("_start", v.vmCtx)
		return ok
	}
	return true
}

// allocContextID is WasmBase::allocContextId: one counter per VM, never reused.
func (v *vm) allocContextID() uint32 {
	for {
		id := v.nextID
		v.nextID++
		if _, used := v.contexts[id]; !used {
			return id
		}
	}
}

// has reports whether the module exports a callback Envoy would call.
func (v *vm) has(name string) bool { return v.exports[name] != nil }

// call calls a guest export on behalf of context c, saving and restoring the current and
// effective contexts around it (cpp-host's SaveRestoreContext). It returns false when the
// call trapped; the VM is then failed and never called again.
func (v *vm) call(name string, c *callContext, params ...uint64) (uint64, bool) {
	fn := v.exports[name]
	if name == v.mallocName {
		fn = v.malloc
	}
	if fn == nil || v.failed {
		return 0, !v.failed
	}
	prevCur, prevEff := v.current, v.effective
	v.current, v.effective = c, 0
	defer func() { v.current, v.effective = prevCur, prevEff }()

	if v.depth == len(v.stacks) {
		v.stacks = append(v.stacks, make([]uint64, 8))
	}
	stack := v.stacks[v.depth][:max(len(params), 1)]
	copy(stack, params)
	v.depth++
	err := fn.CallWithStack(v.ctx, stack)
	v.depth--
	if err != nil {
		v.fail(name, err)
		return 0, false
	}
	return stack[0], true
}

// fail marks the VM failed after a trap in name and logs Envoy's message for it.
func (v *vm) fail(name string, err error) {
	v.failed = true
	v.failMsg = failMessage(name, err)
	v.host.logf(LevelError, SourceHost, v.label, "%s", v.failMsg)
	v.stopTicks()
}

// v8Messages maps wazero's trap texts to V8's, which is what Envoy logs.
var v8Messages = map[string]string{
	"unreachable":                   "RuntimeError: unreachable",
	"out of bounds memory access":   "RuntimeError: memory access out of bounds",
	"integer divide by zero":        "RuntimeError: divide by zero",
	"integer overflow":              "RuntimeError: divide result unrepresentable",
	"invalid conversion to integer": "RuntimeError: float unrepresentable in integer range",
	"stack overflow":                "RangeError: Maximum call stack size exceeded",
	"invalid table access":          "RuntimeError: table index is out of bounds",
	"indirect call type mismatch":   "RuntimeError: null function or function signature mismatch",
	"uncaught exception":            "RuntimeError: uncaught exception",
	"null reference":                "RuntimeError: dereferencing a null pointer",
	"unaligned atomic":              "RuntimeError: operation does not support unaligned accesses",
	"expected shared memory":        "RuntimeError: expected shared memory",
	"too many waiters":              "RuntimeError: too many waiters",
}

// failMessage renders a trap as V8::getFailMessage: "Function: <name> failed: Uncaught
// <error>" and, when frames are known, the in-VM backtrace (at most 20 frames, as Envoy's
// --stack-trace-limit).
func failMessage(name string, err error) string {
	text := err.Error()
	var reason string
	var te *trapError
	switch {
	case errors.As(err, &te):
		reason = "Error: " + te.msg
	case strings.HasPrefix(text, "wasm error: "):
		first, _, _ := strings.Cut(strings.TrimPrefix(text, "wasm error: "), "\n")
		if m, ok := v8Messages[first]; ok {
			reason = m
		} else {
			reason = "RuntimeError: " + first
		}
	default:
		first, _, _ := strings.Cut(text, "\n")
		reason = "Error: " + first
	}
	msg := "Function: " + name + " failed: Uncaught " + reason
	if _, trace, ok := strings.Cut(text, "wasm stack trace:\n"); ok {
		var frames []string
		for _, line := range strings.Split(trace, "\n") {
			line = strings.TrimSpace(line)
			if line == "" || !strings.Contains(line, "(") {
				break
			}
			fn, _, _ := strings.Cut(line, "(")
			frames = append(frames, fn)
			if len(frames) == 20 {
				break
			}
		}
		if len(frames) > 0 {
			msg += "\nProxy-Wasm plugin in-VM backtrace:"
			for i, f := range frames {
				msg += fmt.Sprintf("\n%3d:  - %s", i, f)
			}
		}
	}
	return msg
}

// alloc calls the guest allocator (WasmBase::allocMemory): re-entrantly, under the allocator
// allow-list, for the VM context; the result must lie inside linear memory.
func (v *vm) alloc(size uint32) (uint32, bool) {
	if v.malloc == nil || v.failed {
		return 0, false
	}
	v.restricted = v.spec.mallocAllowed
	ptr, ok := v.call(v.mallocName, v.vmCtx, uint64(size))
	// Envoy switches the restriction off after the allocator, it does not restore it.
	v.restricted = nil
	p := uint32(ptr)
	if !ok || p == 0 || uint64(p)+uint64(size) > uint64(v.mem.Size()) {
		return 0, false
	}
	return p, true
}

// read returns a view of guest memory; false when [ptr, ptr+size) is not inside it.
func (v *vm) read(ptr, size uint32) ([]byte, bool) {
	return v.mem.Read(ptr, size)
}

func (v *vm) putU32(ptr, val uint32) bool        { return v.mem.WriteUint32Le(ptr, val) }
func (v *vm) putU64(ptr uint32, val uint64) bool { return v.mem.WriteUint64Le(ptr, val) }

// copyOut is WasmBase::copyToPointerSize: allocate in the guest, copy, and store pointer and
// size; empty data is returned as ptr=0,size=0 without calling the allocator.
func (v *vm) copyOut(data []byte, ptrPtr, sizePtr uint32) wasmResult {
	var ptr uint32
	if len(data) > 0 {
		p, ok := v.alloc(uint32(len(data)))
		if !ok || !v.mem.Write(p, data) {
			return resultInvalidMemAccess
		}
		ptr = p
	}
	if !v.putU32(ptrPtr, ptr) || !v.putU32(sizePtr, uint32(len(data))) {
		return resultInvalidMemAccess
	}
	return resultOk
}

// copyOutPairs returns a header map in the pairs encoding; an empty map is ptr=0,size=0.
func (v *vm) copyOutPairs(h Headers, ptrPtr, sizePtr uint32) wasmResult {
	if len(h) == 0 {
		return v.copyOut(nil, ptrPtr, sizePtr)
	}
	size := pairsSize(h)
	p, ok := v.alloc(uint32(size))
	if !ok {
		return resultInvalidMemAccess
	}
	buf, ok := v.mem.Read(p, uint32(size))
	if !ok {
		return resultInvalidMemAccess
	}
	marshalPairs(h, buf)
	if !v.putU32(ptrPtr, p) || !v.putU32(sizePtr, uint32(size)) {
		return resultInvalidMemAccess
	}
	return resultOk
}

// effectiveContext is cpp-host's contextOrEffectiveContext.
func (v *vm) effectiveContext() *callContext {
	if v.effective != 0 {
		if c := v.contexts[v.effective]; c != nil {
			return c
		}
	}
	if v.current == nil {
		return v.vmCtx
	}
	return v.current
}

// runAfter runs the after-VM-call actions (WasmBase::doAfterVmCallActions) until none is left;
// actions may call into the VM and queue more.
func (v *vm) runAfter() {
	for len(v.after) > 0 {
		f := v.after[0]
		v.after = v.after[1:]
		f()
	}
}

// callback runs one top-level callback as cpp-host's ContextBase does: the call, then check
// (cpp-host's CHECK_FAIL, may be nil), then the deferred actions. It returns the raw result,
// whether the export exists and whether proxy_send_local_response forced a stop.
func (v *vm) callback(c *callContext, name string, check func(), params ...uint64) (res uint64, exported, stop bool) {
	if !v.has(name) {
		return 0, false, false
	}
	res, _ = v.call(name, c, params...)
	if check != nil {
		check()
	}
	stop = v.stopIter
	v.stopIter = false
	v.runAfter()
	return res, true, stop
}

// startRoot runs the root sequence for the plugin (ContextBase::onStart, then onConfigure):
// on_context_create(R, 0), on_vm_start(R, len(vm config)), on_configure(R, len(plugin config)).
// It returns Envoy's failure message, or "" on success.
func (v *vm) startRoot() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	root := &callContext{id: v.allocContextID(), root: true}
	v.contexts[root.id] = root
	v.rootCtx = root
	opts := v.host.opts

	root.pluginConfig = true
	v.callback(root, "proxy_on_context_create", nil, uint64(root.id), 0)
	root.pluginConfig = false
	if v.failed {
		return "Failed to start base Wasm"
	}
	if v.has("proxy_on_vm_start") {
		res, _, _ := v.callback(root, "proxy_on_vm_start", nil, uint64(root.id), uint64(len(opts.VMConfig)))
		if v.failed || uint32(res) == 0 {
			return "Failed to start base Wasm"
		}
	}
	if v.has("proxy_on_configure") {
		root.pluginConfig = true
		res, _, _ := v.callback(root, "proxy_on_configure", nil, uint64(root.id), uint64(len(opts.PluginConfig)))
		root.pluginConfig = false
		if v.failed || uint32(res) == 0 {
			return "Failed to configure base Wasm plugin"
		}
	}
	return ""
}

// shutdownRoot is WasmBase::startShutdown for the plugin's root context: on_done(R), then
// on_delete(R) when on_done answered non-zero; otherwise the root waits for proxy_done.
func (v *vm) shutdownRoot() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.failed || v.rootCtx == nil {
		return
	}
	root := v.rootCtx
	res, exported, _ := v.callback(root, "proxy_on_done", nil, uint64(root.id))
	if exported && uint32(res) == 0 && !v.failed {
		v.rootPending = true
		return
	}
	v.callback(root, "proxy_on_delete", nil, uint64(root.id))
}

// memoryBytes is the size of linear memory.
func (v *vm) memoryBytes() uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return uint64(v.mem.Size())
}

// close releases the instance. Canary VMs are closed this way without done/delete.
func (v *vm) close(ctx context.Context) {
	v.stopTicks()
	_ = v.mod.Close(ctx)
}

// setTickPeriod arms or disarms the root context's tick (proxy_set_tick_period_milliseconds).
func (v *vm) setTickPeriod(d time.Duration) {
	v.stopTicks()
	v.tickPeriod = d
	if d <= 0 || v.label == "canary" || v.label == "base" {
		// The canary is discarded right after on_configure; Envoy never ticks it.
		return
	}
	stop := make(chan struct{})
	v.tickStop = stop
	go func() {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				v.tick(stop)
			}
		}
	}()
}

func (v *vm) stopTicks() {
	if v.tickStop != nil {
		close(v.tickStop)
		v.tickStop = nil
	}
}

// tick delivers proxy_on_tick(R) (ContextBase::onTick), unless the period changed while it
// waited for the VM.
func (v *vm) tick(stop chan struct{}) {
	v.mu.Lock()
	defer v.mu.Unlock()
	select {
	case <-stop:
		return
	default:
	}
	if v.failed || v.rootCtx == nil {
		return
	}
	v.callback(v.rootCtx, "proxy_on_tick", nil, uint64(v.rootCtx.id))
}

// le is the byte order of every integer in guest memory.
var le = binary.LittleEndian
