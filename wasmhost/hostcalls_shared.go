package wasmhost

// sharedCalls: shared data and queues, one store for the host, keyed as Envoy's by vm_id.
var sharedCalls = map[string]proxyImpl{
	"proxy_get_shared_data": func(a *hostArgs) wasmResult {
		key := a.string()
		if !a.ok() {
			return a.res
		}
		val, cas, found := a.v.host.shared.get(key)
		if !found {
			return resultNotFound
		}
		a.copyOut(val)
		return a.putU32(cas)
	},
	"proxy_set_shared_data": func(a *hostArgs) wasmResult {
		key, val, cas := a.string(), a.bytes(), a.u32()
		if !a.ok() {
			return a.res
		}
		return a.v.host.shared.set(key, val, cas)
	},
	"proxy_register_shared_queue": func(a *hostArgs) wasmResult {
		name := a.string()
		if !a.ok() {
			return a.res
		}
		return a.putU32(a.v.host.shared.registerQueue(name))
	},
	"proxy_resolve_shared_queue": func(a *hostArgs) wasmResult {
		a.bytes() // vm_id
		name := a.string()
		if !a.ok() {
			return a.res
		}
		token, found := a.v.host.shared.resolveQueue(name)
		if !found {
			return resultNotFound
		}
		return a.putU32(token)
	},
	"proxy_enqueue_shared_queue": func(a *hostArgs) wasmResult {
		token, data := a.u32(), a.bytes()
		if !a.ok() {
			return a.res
		}
		return a.v.host.shared.enqueue(token, data)
	},
	"proxy_dequeue_shared_queue": func(a *hostArgs) wasmResult {
		data, r := a.v.host.shared.dequeue(a.u32())
		if r != resultOk {
			return r
		}
		return a.copyOut(data)
	},
}
