package wasmhost

// mapCalls: the header and trailer maps.
var mapCalls = map[string]proxyImpl{
	"proxy_get_header_map_value": func(a *hostArgs) wasmResult {
		typ, key := a.enum(mapMax), a.string()
		if !a.ok() {
			return a.res
		}
		c := a.v.effectiveContext()
		m := a.v.constMap(c, typ)
		if m == nil {
			if c.stream != nil && c.stream.accessLog {
				// Maps may be absent in the access-log phase; 0.1.0 answered "" there.
				if a.v.host.abi == abi010 {
					return a.copyOut(nil)
				}
				return resultNotFound
			}
			return resultBadArgument
		}
		val, found := m.get(key)
		if !found {
			if a.v.host.abi == abi010 {
				return a.copyOut(nil)
			}
			return resultNotFound
		}
		return a.copyOut([]byte(val))
	},
	"proxy_add_header_map_value": func(a *hostArgs) wasmResult {
		return mutateMap(a, func(m *headerMap, k, val string) { m.add(k, val) })
	},
	"proxy_replace_header_map_value": func(a *hostArgs) wasmResult {
		return mutateMap(a, func(m *headerMap, k, val string) { m.set(k, val) })
	},
	"proxy_remove_header_map_value": func(a *hostArgs) wasmResult {
		typ, key := a.enum(mapMax), a.string()
		m, r := changeableMap(a, typ)
		if m == nil {
			return r
		}
		m.remove(key)
		return resultOk
	},
	// An unavailable map answers Ok with an empty result (Context::getHeaderMapPairs).
	"proxy_get_header_map_pairs": func(a *hostArgs) wasmResult {
		typ := a.enum(mapMax)
		if !a.ok() {
			return a.res
		}
		var h Headers
		if m := a.v.constMap(a.v.effectiveContext(), typ); m != nil {
			h = m.h
		}
		return a.copyOutPairs(h)
	},
	// Removes every key, then adds every pair; malformed pairs parse as an empty list, which
	// leaves the map empty.
	"proxy_set_header_map_pairs": func(a *hostArgs) wasmResult {
		typ, data := a.enum(mapMax), a.bytes()
		m, r := changeableMap(a, typ)
		if m == nil {
			return r
		}
		m.h = m.h[:0]
		for _, kv := range parsePairs(data) {
			m.add(kv[0], kv[1])
		}
		return resultOk
	},
	"proxy_get_header_map_size": func(a *hostArgs) wasmResult {
		m, r := changeableMap(a, a.enum(mapMax))
		if m == nil {
			return r
		}
		return a.putU32(m.byteSize())
	},
}

// mutateMap is the common part of add and replace.
func mutateMap(a *hostArgs, op func(m *headerMap, k, val string)) wasmResult {
	typ, key, val := a.enum(mapMax), a.string(), a.string()
	m, r := changeableMap(a, typ)
	if m == nil {
		return r
	}
	op(m, key, val)
	return resultOk
}

// changeableMap opens the functions that change or size a map: the map typ names in the
// effective context (mutMap), or nil and the call's answer (the first argument failure, else
// BadArgument).
func changeableMap(a *hostArgs, typ uint32) (*headerMap, wasmResult) {
	if !a.ok() {
		return nil, a.res
	}
	if m := a.v.mutMap(a.v.effectiveContext(), typ); m != nil {
		return m, resultOk
	}
	return nil, resultBadArgument
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
