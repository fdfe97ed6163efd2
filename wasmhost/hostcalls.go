package wasmhost

import (
	"context"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// The env.* host functions (spec/proxy-wasm-envoy.md §1.4) live in hostcalls_*.go by ABI
// group, each stating Envoy's answers; the numbers are the WasmResult of §1.5. This file holds
// the plumbing every group shares, logging, time and the plugin configuration.

// hostImpl implements one host function; stack holds the i32/i64 arguments on entry (i32s
// with undefined upper bits, so always read through uint32()) and the result on return.
type hostImpl func(v *vm, s []uint64)

// exportHost registers fn on b. Every call first enforces the restricted-callback window in
// force: a function outside the allow-list traps with "restricted_callback", as V8 does.
func exportHost(b wazero.HostModuleBuilder, module, name string, sig signature, fn hostImpl) {
	full := module + "." + name
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, _ api.Module, stack []uint64) {
			v, _ := ctx.Value(vmKey{}).(*vm)
			if v == nil {
				panic(&trapError{msg: "host function " + full + " called outside a proxy-wasm call"})
			}
			if v.restricted != nil && !v.restricted[full] {
				panic(&trapError{msg: "restricted_callback"})
			}
			fn(v, stack)
		}), sig.params, sig.results).
		WithName(name).
		Export(name)
}

// arg is argument i of a host call as an i32.
func arg(s []uint64, i int) uint32 { return uint32(s[i]) }

// proxyImpl implements one proxy_* host function: it reads its arguments through a and
// returns the call's WasmResult.
type proxyImpl func(a *hostArgs) wasmResult

// hostArgs reads one proxy_* call's arguments in order and keeps the first failure, which is
// what the call answers: guest memory out of bounds is InvalidMemoryAccess, an enum past its
// maximum BadArgument. After a failure, reads return zero values and writes are skipped, so an
// implementation reads what Envoy reads, in Envoy's order, and checks ok once before acting.
type hostArgs struct {
	v    *vm
	s    []uint64
	next int        // the next argument
	res  wasmResult // the first failure, resultOk while none
}

// ok reports whether every read and write so far succeeded.
func (a *hostArgs) ok() bool { return a.res == resultOk }

// fail records r unless an earlier failure is already the answer; it returns the answer.
func (a *hostArgs) fail(r wasmResult) wasmResult {
	if a.res == resultOk {
		a.res = r
	}
	return a.res
}

// u32 is the next argument as an i32 (the upper bits are undefined).
func (a *hostArgs) u32() uint32 {
	x := arg(a.s, a.next)
	a.next++
	return x
}

// u64 is the next argument as an i64.
func (a *hostArgs) u64() uint64 {
	x := a.s[a.next]
	a.next++
	return x
}

// enum is the next argument as a type enum whose largest value is max; past it is BadArgument.
func (a *hostArgs) enum(max uint32) uint32 {
	x := a.u32()
	if x > max {
		a.fail(resultBadArgument)
	}
	return x
}

// bytes is a view of the guest memory the next two arguments (pointer, size) name; it is only
// valid until the guest runs again.
func (a *hostArgs) bytes() []byte {
	ptr, size := a.u32(), a.u32()
	if !a.ok() {
		return nil
	}
	b, ok := a.v.read(ptr, size)
	if !ok {
		a.fail(resultInvalidMemAccess)
	}
	return b
}

// string is a copy of the guest memory the next two arguments (pointer, size) name.
func (a *hostArgs) string() string {
	return string(a.bytes())
}

// putU32 stores val where the next argument points.
func (a *hostArgs) putU32(val uint32) wasmResult {
	ptr := a.u32()
	if a.ok() && !a.v.putU32(ptr, val) {
		a.fail(resultInvalidMemAccess)
	}
	return a.res
}

// putU64 stores val where the next argument points.
func (a *hostArgs) putU64(val uint64) wasmResult {
	ptr := a.u32()
	if a.ok() && !a.v.putU64(ptr, val) {
		a.fail(resultInvalidMemAccess)
	}
	return a.res
}

// copyOut returns data in guest memory through the next two arguments (where to store the
// pointer, where to store the size).
func (a *hostArgs) copyOut(data []byte) wasmResult {
	ptrPtr, sizePtr := a.u32(), a.u32()
	if a.ok() {
		a.fail(a.v.copyOut(data, ptrPtr, sizePtr))
	}
	return a.res
}

// copyOutPairs is copyOut for a header map in the pairs encoding.
func (a *hostArgs) copyOutPairs(h Headers) wasmResult {
	ptrPtr, sizePtr := a.u32(), a.u32()
	if a.ok() {
		a.fail(a.v.copyOutPairs(h, ptrPtr, sizePtr))
	}
	return a.res
}

// hostImpl adapts fn to the stack calling convention. The arguments live in the VM, not on
// the heap: a host call allocates nothing of its own.
func (fn proxyImpl) hostImpl() hostImpl {
	return func(v *vm, s []uint64) {
		outer := v.args
		v.args = hostArgs{v: v, s: s}
		s[0] = uint64(fn(&v.args))
		v.args = outer
	}
}

// envImpls are all env.* host functions: the Emscripten helpers and every ABI group.
var envImpls = func() map[string]hostImpl {
	m := map[string]hostImpl{
		"pthread_equal": func(v *vm, s []uint64) {
			if arg(s, 0) == arg(s, 1) {
				s[0] = 1
			} else {
				s[0] = 0
			}
		},
		"emscripten_notify_memory_growth": func(v *vm, s []uint64) {},
	}
	groups := []map[string]proxyImpl{
		logCalls, mapCalls, bufferCalls, streamCalls, propertyCalls, metricCalls, calloutCalls, sharedCalls,
	}
	for _, g := range groups {
		for name, fn := range g {
			if _, dup := m[name]; dup {
				panic("wasmhost: two implementations of env." + name)
			}
			m[name] = fn.hostImpl()
		}
	}
	return m
}()

// logCalls: logging, time, status and the configuration.
var logCalls = map[string]proxyImpl{
	// level > 5 → BadArgument; unreadable message → InvalidMemoryAccess; lines below the wasm
	// logger level are dropped but still answered Ok.
	"proxy_log": func(a *hostArgs) wasmResult {
		level, msg := a.enum(5), a.string()
		if !a.ok() {
			return a.res
		}
		a.v.host.guestLog(LogLevel(level+1), SourceProxyLog, a.v, msg)
		return resultOk
	},
	"proxy_get_log_level": func(a *hostArgs) wasmResult {
		return a.putU32(a.v.host.opts.LogLevel.envoy())
	},
	"proxy_get_current_time_nanoseconds": func(a *hostArgs) wasmResult {
		return a.putU64(uint64(time.Now().UnixNano()))
	},
	// Ticks belong to the root context; 0 disables them.
	"proxy_set_tick_period_milliseconds": func(a *hostArgs) wasmResult {
		a.v.setTickPeriod(time.Duration(a.u32()) * time.Millisecond)
		return resultOk
	},
	"proxy_get_status": func(a *hostArgs) wasmResult {
		c := a.v.rootOf(a.v.effectiveContext())
		a.putU32(c.statusCode)
		return a.copyOut([]byte(c.statusMessage))
	},
	"proxy_get_configuration": func(a *hostArgs) wasmResult {
		cfg := a.v.host.opts.VMConfig
		if a.v.effectiveContext().pluginConfig {
			cfg = a.v.host.opts.PluginConfig
		}
		return a.copyOut(cfg)
	},
}

// rootOf returns the root context a context belongs to.
func (v *vm) rootOf(c *callContext) *callContext {
	if c.root || v.rootCtx == nil {
		return c
	}
	return v.rootCtx
}
