package wasmhost

import "strings"

// propertyCalls: properties and filter state.
var propertyCalls = map[string]proxyImpl{
	"proxy_get_property": func(a *hostArgs) wasmResult {
		path := a.string()
		if !a.ok() {
			return a.res
		}
		val, r := a.v.property(a.v.effectiveContext(), path)
		if r != resultOk {
			return r
		}
		return a.copyOut(val)
	},
	"proxy_set_property": func(a *hostArgs) wasmResult {
		key, val := a.string(), a.bytes()
		if !a.ok() {
			return a.res
		}
		c := a.v.effectiveContext()
		if c.stream == nil {
			return resultNotFound
		}
		c.stream.filterState["wasm."+key] = append([]byte(nil), val...)
		return resultOk
	},
}

// property answers proxy_get_property for the paths the host knows: the plugin tokens Envoy
// adds (plugin_name, plugin_root_id, plugin_vm_id), a subset of the request and response
// attributes (Stream.attribute), and filter state written with proxy_set_property. Path
// segments are separated by NUL; strings are raw, integers 8-byte little-endian, maps the
// pairs encoding.
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
