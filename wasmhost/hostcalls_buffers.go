package wasmhost

// bufferCalls: request and response bodies, the configurations, and the buffers the host has
// no data for.
var bufferCalls = map[string]proxyImpl{
	"proxy_get_buffer_bytes": func(a *hostArgs) wasmResult {
		typ, start, length := a.enum(bufferMax), uint64(a.u32()), uint64(a.u32())
		b, r := lookupBuffer(a, typ)
		if b == nil {
			return r
		}
		// A range past the end is cut to what the buffer holds.
		data := b.bytes()
		start = min(start, uint64(len(data)))
		length = min(length, uint64(len(data))-start)
		return a.copyOut(data[start : start+length])
	},
	"proxy_get_buffer_status": func(a *hostArgs) wasmResult {
		b, r := lookupBuffer(a, a.enum(bufferMax))
		if b == nil {
			return r
		}
		a.putU32(uint32(len(b.bytes())))
		return a.putU32(0)
	},
	"proxy_set_buffer_bytes": func(a *hostArgs) wasmResult {
		typ, start, length := a.enum(bufferMax), a.u32(), a.u32()
		b, r := lookupBuffer(a, typ)
		if b == nil {
			return r
		}
		data := a.bytes()
		if !a.ok() {
			return a.res
		}
		return b.copyFrom(start, length, data)
	},
}

// lookupBuffer opens the buffer functions: the buffer typ names in the effective context, or
// nil and the call's answer (the first argument failure, else NotFound).
func lookupBuffer(a *hostArgs, typ uint32) (*wasmBuffer, wasmResult) {
	if !a.ok() {
		return nil, a.res
	}
	if b := a.v.buffer(a.v.effectiveContext(), typ); b != nil {
		return b, resultOk
	}
	return nil, resultNotFound
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
