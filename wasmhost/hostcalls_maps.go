package wasmhost

import (
	"context"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

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

func ret(s []uint64, r wasmResult) { s[0] = uint64(r) }

func arg(s []uint64, i int) uint32 { return uint32(s[i]) }

// envImpls are the env.* host functions (spec/proxy-wasm-envoy.md §1.4). Each states Envoy's
// answers; the numbers are the WasmResult of §1.5.
var envImpls = map[string]hostImpl{
	"pthread_equal": func(v *vm, s []uint64) {
		if arg(s, 0) == arg(s, 1) {
			s[0] = 1
		} else {
			s[0] = 0
		}
	},
	"emscripten_notify_memory_growth": func(v *vm, s []uint64) {},

	// proxy_log: level > 5 → BadArgument; unreadable message → InvalidMemoryAccess; lines
	// below the wasm logger level are dropped but still answered Ok.
	"proxy_log": func(v *vm, s []uint64) {
		level := arg(s, 0)
		if level > 5 {
			ret(s, resultBadArgument)
			return
		}
		msg, ok := v.readString(arg(s, 1), arg(s, 2))
		if !ok {
			ret(s, resultInvalidMemAccess)
			return
		}
		v.host.guestLog(LogLevel(level+1), SourceProxyLog, v, msg)
		ret(s, resultOk)
	},
	"proxy_get_log_level": func(v *vm, s []uint64) {
		if !v.putU32(arg(s, 0), v.host.opts.LogLevel.envoy()) {
			ret(s, resultInvalidMemAccess)
			return
		}
		ret(s, resultOk)
	},
	"proxy_get_current_time_nanoseconds": func(v *vm, s []uint64) {
		if !v.putU64(arg(s, 0), uint64(time.Now().UnixNano())) {
			ret(s, resultInvalidMemAccess)
			return
		}
		ret(s, resultOk)
	},
	// Ticks belong to the root context; 0 disables them.
	"proxy_set_tick_period_milliseconds": func(v *vm, s []uint64) {
		v.setTickPeriod(time.Duration(arg(s, 0)) * time.Millisecond)
		ret(s, resultOk)
	},
	"proxy_get_status": func(v *vm, s []uint64) {
		c := v.rootOf(v.effectiveContext())
		if !v.putU32(arg(s, 0), c.statusCode) {
			ret(s, resultInvalidMemAccess)
			return
		}
		ret(s, v.copyOut([]byte(c.statusMessage), arg(s, 1), arg(s, 2)))
	},

	// Buffers.
	"proxy_get_buffer_bytes": func(v *vm, s []uint64) {
		typ, start, length := arg(s, 0), uint64(arg(s, 1)), uint64(arg(s, 2))
		if typ > bufferMax {
			ret(s, resultBadArgument)
			return
		}
		b := v.buffer(v.effectiveContext(), typ)
		if b == nil {
			ret(s, resultNotFound)
			return
		}
		data := b.bytes()
		size := uint64(len(data))
		switch {
		case start > size:
			length = 0
		case start+length > size:
			length = size - start
		}
		if length == 0 {
			ret(s, v.copyOut(nil, arg(s, 3), arg(s, 4)))
			return
		}
		ret(s, v.copyOut(data[start:start+length], arg(s, 3), arg(s, 4)))
	},
	"proxy_get_buffer_status": func(v *vm, s []uint64) {
		typ := arg(s, 0)
		if typ > bufferMax {
			ret(s, resultBadArgument)
			return
		}
		b := v.buffer(v.effectiveContext(), typ)
		if b == nil {
			ret(s, resultNotFound)
			return
		}
		if !v.putU32(arg(s, 1), uint32(len(b.bytes()))) || !v.putU32(arg(s, 2), 0) {
			ret(s, resultInvalidMemAccess)
			return
		}
		ret(s, resultOk)
	},
	"proxy_set_buffer_bytes": func(v *vm, s []uint64) {
		typ := arg(s, 0)
		if typ > bufferMax {
			ret(s, resultBadArgument)
			return
		}
		b := v.buffer(v.effectiveContext(), typ)
		if b == nil {
			ret(s, resultNotFound)
			return
		}
		data, ok := v.read(arg(s, 3), arg(s, 4))
		if !ok {
			ret(s, resultInvalidMemAccess)
			return
		}
		ret(s, b.copyFrom(arg(s, 1), arg(s, 2), data))
	},

	// Header maps.
	"proxy_get_header_map_value": func(v *vm, s []uint64) {
		typ := arg(s, 0)
		if typ > mapMax {
			ret(s, resultBadArgument)
			return
		}
		key, ok := v.readString(arg(s, 1), arg(s, 2))
		if !ok {
			ret(s, resultInvalidMemAccess)
			return
		}
		c := v.effectiveContext()
		m := v.constMap(c, typ)
		if m == nil {
			if c.stream != nil && c.stream.accessLog {
				// Maps may be absent in the access-log phase; 0.1.0 answered "" there.
				if v.host.abi == abi010 {
					ret(s, v.copyOut(nil, arg(s, 3), arg(s, 4)))
					return
				}
				ret(s, resultNotFound)
				return
			}
			ret(s, resultBadArgument)
			return
		}
		val, found := m.get(key)
		if !found {
			if v.host.abi == abi010 {
				ret(s, v.copyOut(nil, arg(s, 3), arg(s, 4)))
				return
			}
			ret(s, resultNotFound)
			return
		}
		ret(s, v.copyOut([]byte(val), arg(s, 3), arg(s, 4)))
	},
	"proxy_add_header_map_value": func(v *vm, s []uint64) {
		mutateMap(v, s, func(m *headerMap, k, val string) { m.add(k, val) })
	},
	"proxy_replace_header_map_value": func(v *vm, s []uint64) {
		mutateMap(v, s, func(m *headerMap, k, val string) { m.set(k, val) })
	},
	"proxy_remove_header_map_value": func(v *vm, s []uint64) {
		typ := arg(s, 0)
		if typ > mapMax {
			ret(s, resultBadArgument)
			return
		}
		key, ok := v.readString(arg(s, 1), arg(s, 2))
		if !ok {
			ret(s, resultInvalidMemAccess)
			return
		}
		m := v.mutMap(v.effectiveContext(), typ)
		if m == nil {
			ret(s, resultBadArgument)
			return
		}
		m.remove(key)
		ret(s, resultOk)
	},
	// An unavailable map answers Ok with an empty result (Context::getHeaderMapPairs).
	"proxy_get_header_map_pairs": func(v *vm, s []uint64) {
		typ := arg(s, 0)
		if typ > mapMax {
			ret(s, resultBadArgument)
			return
		}
		var h Headers
		if m := v.constMap(v.effectiveContext(), typ); m != nil {
			h = m.h
		}
		ret(s, v.copyOutPairs(h, arg(s, 1), arg(s, 2)))
	},
	// Removes every key, then adds every pair; malformed pairs parse as an empty list, which
	// leaves the map empty.
	"proxy_set_header_map_pairs": func(v *vm, s []uint64) {
		typ := arg(s, 0)
		if typ > mapMax {
			ret(s, resultBadArgument)
			return
		}
		data, ok := v.read(arg(s, 1), arg(s, 2))
		if !ok {
			ret(s, resultInvalidMemAccess)
			return
		}
		pairs := parsePairs(data)
		m := v.mutMap(v.effectiveContext(), typ)
		if m == nil {
			ret(s, resultBadArgument)
			return
		}
		m.h = m.h[:0]
		for _, kv := range pairs {
			m.add(kv[0], kv[1])
		}
		ret(s, resultOk)
	},
	"proxy_get_header_map_size": func(v *vm, s []uint64) {
		typ := arg(s, 0)
		if typ > mapMax {
			ret(s, resultBadArgument)
			return
		}
		m := v.mutMap(v.effectiveContext(), typ)
		if m == nil {
			ret(s, resultBadArgument)
			return
		}
		if !v.putU32(arg(s, 1), m.byteSize()) {
			ret(s, resultInvalidMemAccess)
			return
		}
		ret(s, resultOk)
	},

	// Stream control.
	"proxy_send_local_response": func(v *vm, s []uint64) {
		details, ok1 := v.readString(arg(s, 1), arg(s, 2))
		body, ok2 := v.read(arg(s, 3), arg(s, 4))
		hdrs, ok3 := v.read(arg(s, 5), arg(s, 6))
		if !ok1 || !ok2 || !ok3 {
			ret(s, resultInvalidMemAccess)
			return
		}
		c := v.effectiveContext()
		if c.stream != nil {
			c.stream.queueLocalReply(arg(s, 0), append([]byte(nil), body...), parsePairs(hdrs), arg(s, 7), details)
		}
		v.stopIter = true
		ret(s, resultOk)
	},
	"proxy_continue_stream": func(v *vm, s []uint64) {
		typ := arg(s, 0)
		if typ > streamMax {
			ret(s, resultBadArgument)
			return
		}
		ret(s, v.continueStream(v.effectiveContext(), typ))
	},
	"proxy_close_stream": func(v *vm, s []uint64) {
		typ := arg(s, 0)
		if typ > streamMax {
			ret(s, resultBadArgument)
			return
		}
		if c := v.effectiveContext(); c.stream != nil && (typ == streamRequest || typ == streamResponse) {
			st := c.stream
			v.after = append(v.after, func() { st.resetByPlugin() })
		}
		ret(s, resultOk)
	},
	"proxy_continue_request":  func(v *vm, s []uint64) { ret(s, v.continueStream(v.effectiveContext(), streamRequest)) },
	"proxy_continue_response": func(v *vm, s []uint64) { ret(s, v.continueStream(v.effectiveContext(), streamResponse)) },
	"proxy_clear_route_cache": func(v *vm, s []uint64) { ret(s, resultOk) },
	"proxy_get_configuration": func(v *vm, s []uint64) {
		c := v.effectiveContext()
		cfg := v.host.opts.VMConfig
		if c.pluginConfig {
			cfg = v.host.opts.PluginConfig
		}
		ret(s, v.copyOut(cfg, arg(s, 0), arg(s, 1)))
	},
	"proxy_set_effective_context": func(v *vm, s []uint64) {
		id := arg(s, 0)
		if v.contexts[id] == nil {
			ret(s, resultBadArgument)
			return
		}
		v.effective = id
		ret(s, resultOk)
	},
	// proxy_done only answers Ok for a root context whose on_done answered 0.
	"proxy_done": func(v *vm, s []uint64) {
		c := v.effectiveContext()
		if !c.root || !v.rootPending {
			ret(s, resultNotFound)
			return
		}
		v.rootPending = false
		root := c
		v.after = append(v.after, func() {
			v.callback(root, "proxy_on_delete", nil, uint64(root.id))
		})
		ret(s, resultOk)
	},

	// Properties.
	"proxy_get_property": func(v *vm, s []uint64) {
		path, ok := v.readString(arg(s, 0), arg(s, 1))
		if !ok {
			ret(s, resultInvalidMemAccess)
			return
		}
		val, r := v.property(v.effectiveContext(), path)
		if r != resultOk {
			ret(s, r)
			return
		}
		ret(s, v.copyOut(val, arg(s, 2), arg(s, 3)))
	},
	"proxy_set_property": func(v *vm, s []uint64) {
		key, ok1 := v.readString(arg(s, 0), arg(s, 1))
		val, ok2 := v.read(arg(s, 2), arg(s, 3))
		if !ok1 || !ok2 {
			ret(s, resultInvalidMemAccess)
			return
		}
		c := v.effectiveContext()
		if c.stream == nil {
			ret(s, resultNotFound)
			return
		}
		c.stream.filterState["wasm."+key] = append([]byte(nil), val...)
		ret(s, resultOk)
	},

	// Metrics.
	"proxy_define_metric": func(v *vm, s []uint64) {
		name, ok := v.readString(arg(s, 1), arg(s, 2))
		if !ok {
			ret(s, resultInvalidMemAccess)
			return
		}
		typ := arg(s, 0)
		if typ > metricMax {
			ret(s, resultBadArgument)
			return
		}
		v.nextMetric[typ] += metricIDIncrement
		id := v.nextMetric[typ]
		v.metrics[id] = v.host.stats.define(typ, name)
		if !v.putU32(arg(s, 3), id) {
			ret(s, resultInvalidMemAccess)
			return
		}
		ret(s, resultOk)
	},
	"proxy_increment_metric": func(v *vm, s []uint64) {
		id, delta := arg(s, 0), int64(s[1])
		st := v.metrics[id]
		switch id & metricTypeMask {
		case metricCounter:
			if st == nil {
				ret(s, resultNotFound)
				return
			}
			if delta <= 0 {
				ret(s, resultBadArgument)
				return
			}
			v.host.stats.add(st, delta)
			ret(s, resultOk)
		case metricGauge:
			if st == nil {
				ret(s, resultNotFound)
				return
			}
			v.host.stats.add(st, delta)
			ret(s, resultOk)
		default:
			ret(s, resultBadArgument)
		}
	},
	// Recording on a counter adds, on a gauge sets, on a histogram records.
	"proxy_record_metric": func(v *vm, s []uint64) {
		id, value := arg(s, 0), s[1]
		st := v.metrics[id]
		if st == nil || id&metricTypeMask > metricHistogram {
			ret(s, resultNotFound)
			return
		}
		switch id & metricTypeMask {
		case metricCounter:
			v.host.stats.add(st, int64(value))
		case metricGauge:
			v.host.stats.set(st, int64(value))
		case metricHistogram:
			v.host.stats.record(st, value)
		}
		ret(s, resultOk)
	},
	"proxy_get_metric": func(v *vm, s []uint64) {
		id := arg(s, 0)
		if t := id & metricTypeMask; t != metricCounter && t != metricGauge {
			ret(s, resultBadArgument)
			return
		}
		st := v.metrics[id]
		if st == nil {
			ret(s, resultNotFound)
			return
		}
		if !v.putU64(arg(s, 1), uint64(v.host.stats.value(st))) {
			ret(s, resultInvalidMemAccess)
			return
		}
		ret(s, resultOk)
	},

	// Callouts: the host has no clusters, so every proxy_http_call names an unknown cluster.
	"proxy_http_call": func(v *vm, s []uint64) {
		_, ok1 := v.read(arg(s, 0), arg(s, 1))
		_, ok2 := v.read(arg(s, 2), arg(s, 3))
		_, ok3 := v.read(arg(s, 4), arg(s, 5))
		_, ok4 := v.read(arg(s, 6), arg(s, 7))
		if !ok1 || !ok2 || !ok3 || !ok4 || !v.putU32(arg(s, 9), 0) {
			ret(s, resultInvalidMemAccess)
			return
		}
		// Context::httpCall: a negative timeout and an unknown cluster are both BadArgument.
		ret(s, resultBadArgument)
	},
	"proxy_grpc_call": func(v *vm, s []uint64) {
		for i := 0; i < 10; i += 2 {
			if _, ok := v.read(arg(s, i), arg(s, i+1)); !ok {
				ret(s, resultInvalidMemAccess)
				return
			}
		}
		// An unknown cluster name is a ParseFailure (Context::grpcCall).
		ret(s, 4)
	},
	"proxy_grpc_stream": func(v *vm, s []uint64) {
		for i := 0; i < 8; i += 2 {
			if _, ok := v.read(arg(s, i), arg(s, i+1)); !ok {
				ret(s, resultInvalidMemAccess)
				return
			}
		}
		ret(s, 4)
	},
	"proxy_grpc_cancel": grpcToken,
	"proxy_grpc_close":  grpcToken,
	"proxy_grpc_send": func(v *vm, s []uint64) {
		if _, ok := v.read(arg(s, 1), arg(s, 2)); !ok {
			ret(s, resultInvalidMemAccess)
			return
		}
		if arg(s, 0)&0x3 != 2 {
			ret(s, resultBadArgument)
			return
		}
		ret(s, resultNotFound)
	},

	// Shared data and queues: one store for the host, keyed as Envoy's by vm_id.
	"proxy_get_shared_data": func(v *vm, s []uint64) {
		key, ok := v.readString(arg(s, 0), arg(s, 1))
		if !ok {
			ret(s, resultInvalidMemAccess)
			return
		}
		val, cas, found := v.host.shared.get(key)
		if !found {
			ret(s, resultNotFound)
			return
		}
		if r := v.copyOut(val, arg(s, 2), arg(s, 3)); r != resultOk {
			ret(s, r)
			return
		}
		if !v.putU32(arg(s, 4), cas) {
			ret(s, resultInvalidMemAccess)
			return
		}
		ret(s, resultOk)
	},
	"proxy_set_shared_data": func(v *vm, s []uint64) {
		key, ok1 := v.readString(arg(s, 0), arg(s, 1))
		val, ok2 := v.read(arg(s, 2), arg(s, 3))
		if !ok1 || !ok2 {
			ret(s, resultInvalidMemAccess)
			return
		}
		ret(s, v.host.shared.set(key, val, arg(s, 4)))
	},
	"proxy_register_shared_queue": func(v *vm, s []uint64) {
		name, ok := v.readString(arg(s, 0), arg(s, 1))
		if !ok {
			ret(s, resultInvalidMemAccess)
			return
		}
		if !v.putU32(arg(s, 2), v.host.shared.registerQueue(name)) {
			ret(s, resultInvalidMemAccess)
			return
		}
		ret(s, resultOk)
	},
	"proxy_resolve_shared_queue": func(v *vm, s []uint64) {
		_, ok1 := v.read(arg(s, 0), arg(s, 1))
		name, ok2 := v.readString(arg(s, 2), arg(s, 3))
		if !ok1 || !ok2 {
			ret(s, resultInvalidMemAccess)
			return
		}
		token, found := v.host.shared.resolveQueue(name)
		if !found {
			ret(s, resultNotFound)
			return
		}
		if !v.putU32(arg(s, 4), token) {
			ret(s, resultInvalidMemAccess)
			return
		}
		ret(s, resultOk)
	},
	"proxy_enqueue_shared_queue": func(v *vm, s []uint64) {
		data, ok := v.read(arg(s, 1), arg(s, 2))
		if !ok {
			ret(s, resultInvalidMemAccess)
			return
		}
		ret(s, v.host.shared.enqueue(arg(s, 0), data))
	},
	"proxy_dequeue_shared_queue": func(v *vm, s []uint64) {
		data, r := v.host.shared.dequeue(arg(s, 0))
		if r != resultOk {
			ret(s, r)
			return
		}
		ret(s, v.copyOut(data, arg(s, 1), arg(s, 2)))
	},

	// Foreign functions: only clear_route_cache (Envoy >= 1.33) is emulated, as a no-op; the
	// others Envoy registers (compress, verify_signature, ...) answer NotFound here.
	"proxy_call_foreign_function": func(v *vm, s []uint64) {
		name, ok1 := v.readString(arg(s, 0), arg(s, 1))
		_, ok2 := v.read(arg(s, 2), arg(s, 3))
		if !ok1 || !ok2 {
			ret(s, resultInvalidMemAccess)
			return
		}
		if name != "clear_route_cache" {
			ret(s, resultNotFound)
			return
		}
		if arg(s, 4) != 0 && !v.putU32(arg(s, 4), 0) {
			ret(s, resultInvalidMemAccess)
			return
		}
		if arg(s, 5) != 0 && !v.putU32(arg(s, 5), 0) {
			ret(s, resultInvalidMemAccess)
			return
		}
		ret(s, resultOk)
	},
	// There is no DNS resolver behind the host.
	"envoy_resolve_dns": func(v *vm, s []uint64) { ret(s, resultInternalFailure) },
}

func grpcToken(v *vm, s []uint64) {
	switch arg(s, 0) & 0x3 {
	case 1, 2:
		ret(s, resultNotFound)
	default:
		ret(s, resultBadArgument)
	}
}

// mutateMap is the common part of add and replace.
func mutateMap(v *vm, s []uint64, op func(m *headerMap, k, val string)) {
	typ := arg(s, 0)
	if typ > mapMax {
		ret(s, resultBadArgument)
		return
	}
	key, ok1 := v.readString(arg(s, 1), arg(s, 2))
	val, ok2 := v.readString(arg(s, 3), arg(s, 4))
	if !ok1 || !ok2 {
		ret(s, resultInvalidMemAccess)
		return
	}
	m := v.mutMap(v.effectiveContext(), typ)
	if m == nil {
		ret(s, resultBadArgument)
		return
	}
	op(m, key, val)
	ret(s, resultOk)
}

// rootOf returns the root context a context belongs to.
func (v *vm) rootOf(c *callContext) *callContext {
	if c.root || v.rootCtx == nil {
		return c
	}
	return v.rootCtx
}

// continueStream is Context::continueStream: the continue itself is deferred until the VM
// call returns; the held request maps are dropped at once.
func (v *vm) continueStream(c *callContext, typ uint32) wasmResult {
	switch typ {
	case streamRequest, streamResponse:
		if st := c.stream; st != nil {
			response := typ == streamResponse
			v.after = append(v.after, func() { st.continueByPlugin(response) })
			st.req.dropHeld()
		}
		return resultOk
	case streamDownstream:
		return resultOk
	case streamUpstream:
		return resultUnimplemented
	}
	return resultBadArgument
}

// wasmBuffer is a buffer as proxy_*_buffer_* see it: an Envoy Buffer::Instance (mutable, ref
// set), a string (immutable) or an absent instance (empty, immutable).
type wasmBuffer struct {
	data []byte
	ref  *[]byte
}

func (b *wasmBuffer) bytes() []byte {
	if b.ref != nil {
		return *b.ref
	}
	return b.data
}

// copyFrom is Envoy's Buffer::copyFrom: start 0 drains length bytes then prepends; a start at
// or past the end appends; anything else, and every immutable buffer, is BadArgument.
func (b *wasmBuffer) copyFrom(start, length uint32, data []byte) wasmResult {
	if b.ref == nil {
		return resultBadArgument
	}
	cur := *b.ref
	switch {
	case start == 0:
		drain := min(int(length), len(cur))
		out := make([]byte, 0, len(data)+len(cur)-drain)
		out = append(append(out, data...), cur[drain:]...)
		*b.ref = out
	case int(start) >= len(cur):
		*b.ref = append(cur, data...)
	default:
		return resultBadArgument
	}
	return resultOk
}

var emptyBuffer = &wasmBuffer{}

// buffer is Context::getBuffer for context c.
func (v *vm) buffer(c *callContext, typ uint32) *wasmBuffer {
	switch typ {
	case bufferVMConfiguration:
		return &wasmBuffer{data: v.host.opts.VMConfig}
	case bufferPluginConfig:
		if c.pluginConfig {
			return &wasmBuffer{data: v.host.opts.PluginConfig}
		}
		return nil
	case bufferHTTPCallResponse:
		return nil
	case bufferRequestBody:
		if c.stream != nil {
			return c.stream.req.buffer()
		}
	case bufferResponseBody:
		if c.stream != nil {
			return c.stream.resp.buffer()
		}
	}
	// Downstream/upstream data, gRPC receive buffer, call data and body buffers outside a
	// stream: an empty buffer, answered Ok.
	return emptyBuffer
}

// constMap is Context::getConstMap: what the guest may read.
func (v *vm) constMap(c *callContext, typ uint32) *headerMap {
	st := c.stream
	if st == nil {
		return nil
	}
	if st.accessLog {
		switch typ {
		case mapRequestHeaders:
			return st.req.headers
		case mapResponseHeaders:
			return st.resp.headers
		case mapResponseTrailers:
			return st.resp.trailers
		}
		return nil
	}
	switch typ {
	case mapRequestHeaders:
		return st.req.heldHeaders()
	case mapRequestTrailers:
		return st.req.heldTrailers()
	case mapResponseHeaders:
		return st.resp.heldHeaders()
	case mapResponseTrailers:
		return st.resp.heldTrailers()
	}
	return nil
}

// mutMap is Context::getMap: what the guest may change. Trailers are created on demand from a
// body callback at end of stream (addDecodedTrailers/addEncodedTrailers).
func (v *vm) mutMap(c *callContext, typ uint32) *headerMap {
	st := c.stream
	if st == nil {
		return nil
	}
	switch typ {
	case mapRequestHeaders:
		return st.req.heldHeaders()
	case mapRequestTrailers:
		return st.req.trailersForWrite(st.endOfStream)
	case mapResponseHeaders:
		return st.resp.heldHeaders()
	case mapResponseTrailers:
		return st.resp.trailersForWrite(st.endOfStream)
	}
	return nil
}

// property answers proxy_get_property for the paths the host knows: the plugin tokens Envoy
// adds (plugin_name, plugin_root_id, plugin_vm_id), a subset of the request and response
// attributes, and filter state written with proxy_set_property. Path segments are separated
// by NUL; strings are raw, integers 8-byte little-endian, maps the pairs encoding.
func (v *vm) property(c *callContext, path string) ([]byte, wasmResult) {
	parts := strings.Split(path, "\x00")
	opts := v.host.opts
	switch parts[0] {
	case "plugin_name":
		return leaf(parts, opts.PluginName)
	case "plugin_root_id":
		return leaf(parts, opts.RootID)
	case "plugin_vm_id":
		return leaf(parts, opts.VMID)
	}
	st := c.stream
	if st == nil {
		return nil, resultNotFound
	}
	if val, ok := st.filterState["wasm."+path]; ok {
		return val, resultOk
	}
	return st.attribute(parts)
}

func leaf(parts []string, s string) ([]byte, wasmResult) {
	if len(parts) != 1 {
		return nil, resultNotFound
	}
	return []byte(s), resultOk
}
