package wasmhost

// metricCalls: counters, gauges and histograms in the host-wide store.
var metricCalls = map[string]proxyImpl{
	// The name is read before the type is checked, as Envoy does.
	"proxy_define_metric": func(a *hostArgs) wasmResult {
		typ, name := a.u32(), a.string()
		if !a.ok() {
			return a.res
		}
		if typ > metricMax {
			return resultBadArgument
		}
		v := a.v
		v.nextMetric[typ] += metricIDIncrement
		id := v.nextMetric[typ]
		v.metrics[id] = v.host.stats.define(typ, name)
		return a.putU32(id)
	},
	"proxy_increment_metric": func(a *hostArgs) wasmResult {
		id, delta := a.u32(), int64(a.u64())
		st := a.v.metrics[id]
		switch id & metricTypeMask {
		case metricCounter:
			if st == nil {
				return resultNotFound
			}
			if delta <= 0 {
				return resultBadArgument
			}
		case metricGauge:
			if st == nil {
				return resultNotFound
			}
		default:
			return resultBadArgument
		}
		a.v.host.stats.add(st, delta)
		return resultOk
	},
	// Recording on a counter adds, on a gauge sets, on a histogram records.
	"proxy_record_metric": func(a *hostArgs) wasmResult {
		id, value := a.u32(), a.u64()
		st := a.v.metrics[id]
		if st == nil || id&metricTypeMask > metricHistogram {
			return resultNotFound
		}
		switch id & metricTypeMask {
		case metricCounter:
			a.v.host.stats.add(st, int64(value))
		case metricGauge:
			a.v.host.stats.set(st, int64(value))
		case metricHistogram:
			a.v.host.stats.record(st, value)
		}
		return resultOk
	},
	"proxy_get_metric": func(a *hostArgs) wasmResult {
		id := a.u32()
		if t := id & metricTypeMask; t != metricCounter && t != metricGauge {
			return resultBadArgument
		}
		st := a.v.metrics[id]
		if st == nil {
			return resultNotFound
		}
		return a.putU64(uint64(a.v.host.stats.value(st)))
	},
}
