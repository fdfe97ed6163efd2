package wasmhost

// streamCalls: stream control and contexts. What acts on the stream (a local reply, a
// continue, a close) is deferred until the VM call returns, as in Envoy.
var streamCalls = map[string]proxyImpl{
	"proxy_send_local_response": func(a *hostArgs) wasmResult {
		code, details, body, hdrs, grpc := a.u32(), a.string(), a.bytes(), a.bytes(), a.u32()
		if !a.ok() {
			return a.res
		}
		if c := a.v.effectiveContext(); c.stream != nil {
			c.stream.queueLocalReply(code, append([]byte(nil), body...), parsePairs(hdrs), grpc, details)
		}
		a.v.stopIter = true
		return resultOk
	},
	"proxy_continue_stream": func(a *hostArgs) wasmResult {
		typ := a.enum(streamMax)
		if !a.ok() {
			return a.res
		}
		return a.v.continueStream(a.v.effectiveContext(), typ)
	},
	"proxy_close_stream": func(a *hostArgs) wasmResult {
		typ := a.enum(streamMax)
		if !a.ok() {
			return a.res
		}
		if c := a.v.effectiveContext(); c.stream != nil && (typ == streamRequest || typ == streamResponse) {
			st := c.stream
			a.v.after = append(a.v.after, func() { st.resetByPlugin() })
		}
		return resultOk
	},
	"proxy_continue_request": func(a *hostArgs) wasmResult {
		return a.v.continueStream(a.v.effectiveContext(), streamRequest)
	},
	"proxy_continue_response": func(a *hostArgs) wasmResult {
		return a.v.continueStream(a.v.effectiveContext(), streamResponse)
	},
	"proxy_clear_route_cache": func(a *hostArgs) wasmResult { return resultOk },
	"proxy_set_effective_context": func(a *hostArgs) wasmResult {
		id := a.u32()
		if a.v.contexts[id] == nil {
			return resultBadArgument
		}
		a.v.effective = id
		return resultOk
	},
	// proxy_done only answers Ok for a root context whose on_done answered 0.
	"proxy_done": func(a *hostArgs) wasmResult {
		v, c := a.v, a.v.effectiveContext()
		if !c.root || !v.rootPending {
			return resultNotFound
		}
		v.rootPending = false
		v.after = append(v.after, func() {
			v.callback(c, "proxy_on_delete", nil, uint64(c.id))
		})
		return resultOk
	},
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
