// Command probe is a host test guest that exercises the hostcalls and reports every status
// code and value it sees with proxy_log, one line per scenario: "probe <scenario>: k=v ...".
// The request header x-probe picks the scenario. The host's tests compare those lines with
// Envoy's numbers, not with what this guest expects.
package main

import (
	"strconv"
	"strings"

	abi "github.com/s3cors/s3cors/wasmhost/testdata/guestabi"
)

func main() {}

func init() {
	// proxy_log is the one proxy hostcall allowed during _initialize.
	abi.Log(2, "probe init")
}

//go:wasmexport proxy_abi_version_0_2_1
func abiVersion() {}

//go:wasmexport proxy_on_memory_allocate
func onMemoryAllocate(size uint32) *byte { return abi.Alloc(size) }

type stream struct {
	scenario string
}

var (
	streams = map[uint32]*stream{}
	ids     [4]uint32
	root    uint32
	paused  uint32 // a stream waiting for on_tick to continue it
)

func logf(parts ...string) { abi.Log(2, strings.Join(parts, " ")) }

func kv(k string, v uint32) string { return k + "=" + strconv.FormatUint(uint64(v), 10) }

func kvs(k, v string) string { return k + "=" + strconv.Quote(v) }

//go:wasmexport proxy_on_context_create
func onContextCreate(id, parent uint32) {
	if parent == 0 {
		root = id
		logf("probe root_create:", kv("id", id))
		return
	}
	streams[id] = &stream{}
	logf("probe stream_create:", kv("id", id), kv("parent", parent))
}

//go:wasmexport proxy_on_vm_start
func onVMStart(id, size uint32) uint32 {
	cfg, r := abi.GetBuffer(abi.VMConfig, 0, size)
	c, rc := abi.DefineMetric(0, "probe_requests")
	g, rg := abi.DefineMetric(1, "probe_inflight")
	h, rh := abi.DefineMetric(2, "probe_sizes")
	c2, rc2 := abi.DefineMetric(0, "probe_second")
	ids = [4]uint32{c, g, h, c2}
	logf("probe vm_start:", kv("id", id), kv("size", size), kv("vmcfg_status", r), kvs("vmcfg", string(cfg)),
		kv("counter", c), kv("gauge", g), kv("histogram", h), kv("counter2", c2),
		kv("define_status", rc|rg|rh|rc2))
	return 1
}

//go:wasmexport proxy_on_configure
func onConfigure(id, size uint32) uint32 {
	cfg, r := abi.GetBuffer(abi.PluginConfig, 0, size)
	logf("probe configure:", kv("id", id), kv("size", size), kv("status", r), kvs("config", string(cfg)))
	// A plugin rejects a configuration by answering 0.
	if string(cfg) == "reject" {
		return 0
	}
	// A local reply from a root context is a no-op that answers Ok.
	logf("probe configure_reply:", kv("status", abi.SendLocalResponse(500, "", "", nil, -1)))
	return 1
}

//go:wasmexport proxy_on_request_headers
func onRequestHeaders(id, n, eos uint32) uint32 {
	st := streams[id]
	scenario, _ := abi.GetHeader(abi.RequestHeaders, "x-probe")
	if st != nil {
		st.scenario = scenario
	}
	logf("probe request_headers:", kv("id", id), kv("n", n), kv("eos", eos), kvs("scenario", scenario))
	switch scenario {
	case "headers":
		path, rp := abi.GetHeader(abi.RequestHeaders, ":path")
		multi, rm := abi.GetHeader(abi.RequestHeaders, "X-Multi")
		_, rmiss := abi.GetHeader(abi.RequestHeaders, "x-missing")
		_, rbad := abi.GetHeader(8, ":path")
		p, sz, rempty := abi.GetHeaderRaw(abi.RequestHeaders, "x-empty")
		before := abi.Allocs
		_, _, _ = abi.GetHeaderRaw(abi.RequestHeaders, "x-empty")
		emptyAllocs := abi.Allocs - before
		pairs, psize, rpairs := abi.Pairs(abi.RequestHeaders)
		first := ""
		if len(pairs) > 0 {
			first = pairs[0][0]
		}
		ra := abi.AddHeader(abi.RequestHeaders, "X-Added", "one")
		rr := abi.ReplaceHeader(abi.RequestHeaders, "x-replaced", "new")
		rd := abi.RemoveHeader(abi.RequestHeaders, "x-removed")
		rdm := abi.RemoveHeader(abi.RequestHeaders, "x-never-there")
		size, rs := abi.MapSize(abi.RequestHeaders)
		_, rsb := abi.MapSize(9)
		logf("probe headers:", kvs("path", path), kv("path_status", rp), kvs("multi", multi), kv("multi_status", rm),
			kv("missing", rmiss), kv("bad_type", rbad), kv("empty_ptr", p), kv("empty_size", sz), kv("empty_status", rempty),
			kv("empty_allocs", uint32(emptyAllocs)), kv("pairs", uint32(len(pairs))), kv("pairs_size", psize), kv("pairs_status", rpairs),
			kvs("first", first), kv("add", ra), kv("replace", rr), kv("remove", rd), kv("remove_missing", rdm),
			kv("size", size), kv("size_status", rs), kv("size_bad", rsb))
	case "set-pairs":
		r := abi.SetPairs(abi.RequestHeaders, abi.EncodePairs([][2]string{{":method", "GET"}, {":path", "/rewritten"}, {"X-New", "v"}}))
		logf("probe set_pairs:", kv("status", r))
	case "set-pairs-bad":
		// Two pairs announced, one present: Envoy parses that as an empty list, then replaces
		// the map with it.
		raw := abi.EncodePairs([][2]string{{"x-a", "1"}})
		raw[0] = 2
		logf("probe set_pairs_bad:", kv("status", abi.SetPairs(abi.RequestHeaders, raw)))
	case "buffers":
		_, rpc := abi.GetBuffer(abi.PluginConfig, 0, 100)
		vm, rvm := abi.GetBuffer(abi.VMConfig, 0, 100)
		vmPart, rvp := abi.GetBuffer(abi.VMConfig, 2, 3)
		past, rpast := abi.GetBuffer(abi.VMConfig, 1000, 10)
		_, rbad := abi.GetBuffer(9, 0, 10)
		body, rbody := abi.GetBuffer(abi.RequestBody, 0, 10)
		rset := abi.SetBuffer(abi.RequestBody, 0, 0, []byte("x"))
		rsetvm := abi.SetBuffer(abi.VMConfig, 0, 0, []byte("x"))
		vlen, rstat := abi.BufferStatus(abi.VMConfig)
		_, rstatpc := abi.BufferStatus(abi.PluginConfig)
		_, rcall := abi.GetBuffer(4, 0, 10)
		logf("probe buffers:", kv("plugin_config", rpc), kvs("vm", string(vm)), kv("vm_status", rvm),
			kvs("vm_part", string(vmPart)), kv("vm_part_status", rvp), kv("past_len", uint32(len(past))), kv("past_status", rpast),
			kv("bad_type", rbad), kv("body_len", uint32(len(body))), kv("body_status", rbody), kv("set_body", rset),
			kv("set_vm", rsetvm), kv("vm_len", vlen), kv("vm_len_status", rstat), kv("status_plugin_config", rstatpc),
			kv("callout_body", rcall))
	case "metrics":
		c, g, h, c2 := ids[0], ids[1], ids[2], ids[3]
		r1 := abi.IncrementMetric(c, 1)
		r0 := abi.IncrementMetric(c, 0)
		rneg := abi.IncrementMetric(c, -1)
		rg := abi.IncrementMetric(g, -3)
		gv, rgv := abi.GetMetric(g)
		rh := abi.IncrementMetric(h, 1)
		rrh := abi.RecordMetric(h, 10)
		rrc := abi.RecordMetric(c, 5)
		cv, rcv := abi.GetMetric(c)
		_, rgh := abi.GetMetric(h)
		runk := abi.IncrementMetric(c2+4, 1)
		rrunk := abi.RecordMetric(g+4, 1)
		rsg := abi.RecordMetric(g, 42)
		gv2, _ := abi.GetMetric(g)
		_, rdef := abi.DefineMetric(3, "bad")
		rlog := abi.Log(6, "never")
		lvl, rlvl := abi.LogLevel()
		logf("probe metrics:", kv("inc", r1), kv("inc_zero", r0), kv("inc_negative", rneg), kv("gauge_inc", rg),
			"gauge="+strconv.FormatInt(int64(gv), 10), kv("gauge_status", rgv), kv("hist_inc", rh), kv("hist_record", rrh),
			kv("counter_record", rrc), kv("counter", uint32(cv)), kv("counter_status", rcv), kv("hist_get", rgh),
			kv("unknown_inc", runk), kv("unknown_record", rrunk), kv("gauge_set", rsg), kv("gauge_after_set", uint32(gv2)),
			kv("define_bad_type", rdef), kv("log_bad_level", rlog), kv("log_level", lvl), kv("log_level_status", rlvl))
	case "misc":
		reff := abi.SetEffectiveContext(99999)
		rself := abi.SetEffectiveContext(id)
		rc3 := abi.ContinueStream(3)
		rc4 := abi.ContinueStream(4)
		rcl5 := abi.CloseStream(5)
		rdone := abi.Done()
		name, rname := abi.GetProperty("plugin_name")
		rootID, rroot := abi.GetProperty("plugin_root_id")
		path, rpath := abi.GetProperty("request", "path")
		method, rmethod := abi.GetProperty("request", "method")
		hdr, rhdr := abi.GetProperty("request", "headers", "x-probe")
		_, rnope := abi.GetProperty("nope")
		_, rcall := abi.HTTPCall("no_such_cluster", [][2]string{{":path", "/"}, {":method", "GET"}, {":authority", "x"}})
		logf("probe misc:", kv("effective_unknown", reff), kv("effective_self", rself), kv("continue_upstream", rc3),
			kv("continue_bad", rc4), kv("close_bad", rcl5), kv("done", rdone), kvs("plugin_name", string(name)), kv("plugin_name_status", rname),
			kvs("root_id", string(rootID)), kv("root_id_status", rroot), kvs("path", string(path)), kv("path_status", rpath),
			kvs("method", string(method)), kv("method_status", rmethod), kvs("header", string(hdr)), kv("header_status", rhdr),
			kv("unknown_property", rnope), kv("http_call", rcall))
	case "reply":
		r := abi.SendLocalResponse(403, "probe  denied\there", "<Error>denied</Error>",
			[][2]string{{"Content-Type", "application/xml"}, {"X-Reply", "1"}}, -1)
		logf("probe reply:", kv("status", r))
		return 0 // Continue: the host must stop anyway.
	case "reply-plain":
		abi.SendLocalResponse(418, "teapot", "short and stout", [][2]string{{"x-reply", "plain"}}, -1)
		return 0
	case "reply-empty":
		abi.SendLocalResponse(204, "", "", [][2]string{{"content-type", "text/html"}, {"content-length", "99"}}, -1)
		return 0
	case "reply-bad-headers":
		raw := abi.EncodePairs([][2]string{{"x-a", "1"}})
		raw = append(raw, 0) // one byte too many: malformed
		abi.SendLocalResponseRawHeaders(400, "bad", raw)
		return 1
	case "reply-grpc":
		abi.SendLocalResponse(403, "nope", "not allowed", nil, 7)
		return 1
	case "panic":
		var m map[string]int
		m["boom"]++ // a nil map write panics: an unrecovered panic is a trap
	case "pause":
		return 1
	case "pause-buffer":
		return 3
	case "continue-on-tick":
		paused = id
		abi.SetTickPeriod(1)
		return 1
	case "close":
		logf("probe close:", kv("status", abi.CloseStream(0)))
		return 1
	case "ret2":
		return 2
	case "ret7":
		return 7
	}
	return 0
}

//go:wasmexport proxy_on_request_body
func onRequestBody(id, size, eos uint32) uint32 {
	st := streams[id]
	body, r := abi.GetBuffer(abi.RequestBody, 0, size)
	logf("probe request_body:", kv("id", id), kv("size", size), kv("eos", eos), kv("status", r), kv("len", uint32(len(body))))
	if st == nil {
		return 0
	}
	switch st.scenario {
	case "body-buffer":
		if eos == 0 {
			return 1 // StopIterationAndBuffer
		}
		up := strings.ToUpper(string(body))
		r1 := abi.SetBuffer(abi.RequestBody, 0, size, []byte(up))
		n, _ := abi.BufferStatus(abi.RequestBody)
		r2 := abi.SetBuffer(abi.RequestBody, n, 0, []byte("!"))
		r3 := abi.SetBuffer(abi.RequestBody, 1, 0, []byte("?"))
		r4 := abi.SetBuffer(abi.RequestBody, 0, 0, []byte(">"))
		logf("probe body_buffer:", kv("replace", r1), kv("append", r2), kv("middle", r3), kv("prepend", r4))
	case "body-watermark":
		if eos == 0 {
			return 2
		}
	case "body-nobuffer":
		if eos == 0 {
			return 3
		}
	case "trailers-add":
		if eos == 1 {
			logf("probe trailers_add:", kv("status", abi.AddHeader(abi.RequestTrailers, "x-trailer", "added")))
		}
	case "body-reply":
		abi.SendLocalResponse(413, "", "too big", nil, -1)
		return 0
	}
	return 0
}

//go:wasmexport proxy_on_request_trailers
func onRequestTrailers(id, n uint32) uint32 {
	v, r := abi.GetHeader(abi.RequestTrailers, "x-t")
	logf("probe request_trailers:", kv("id", id), kv("n", n), kvs("x-t", v), kv("status", r))
	return 0
}

//go:wasmexport proxy_on_response_headers
func onResponseHeaders(id, n, eos uint32) uint32 {
	st := streams[id]
	scenario := ""
	if st != nil {
		scenario = st.scenario
	}
	_, rreq := abi.GetHeader(abi.RequestHeaders, ":path")
	pairs, psize, rpairs := abi.Pairs(abi.RequestHeaders)
	pp, _, _ := abi.PairsRaw(abi.RequestHeaders)
	_, rprop := abi.GetProperty("request", "path")
	resp, _, _ := abi.Pairs(abi.ResponseHeaders)
	var hs []string
	for _, h := range resp {
		hs = append(hs, h[0]+"="+h[1])
	}
	logf("probe response_headers:", kv("id", id), kv("n", n), kv("eos", eos), kvs("scenario", scenario),
		kv("request_get", rreq), kv("request_pairs", uint32(len(pairs))), kv("request_pairs_size", psize),
		kv("request_pairs_ptr", pp), kv("request_pairs_status", rpairs), kv("request_property", rprop),
		kvs("headers", strings.Join(hs, ",")))
	abi.AddHeader(abi.ResponseHeaders, "x-probe-seen", scenario)
	switch scenario {
	case "reply-twice":
		abi.SendLocalResponse(500, "second", "second reply", nil, -1)
	case "resp-reply":
		abi.SendLocalResponse(502, "from response", "bad upstream", nil, -1)
		return 0
	case "resp-pause":
		return 1
	case "resp-panic":
		var m map[string]int
		m["boom"]++
	}
	return 0
}

//go:wasmexport proxy_on_response_body
func onResponseBody(id, size, eos uint32) uint32 {
	body, r := abi.GetBuffer(abi.ResponseBody, 0, size)
	logf("probe response_body:", kv("id", id), kv("size", size), kv("eos", eos), kv("status", r), kvs("body", string(body)))
	if st := streams[id]; st != nil && st.scenario == "resp-upper" && eos == 1 {
		abi.SetBuffer(abi.ResponseBody, 0, size, []byte(strings.ToUpper(string(body))))
	}
	return 0
}

//go:wasmexport proxy_on_response_trailers
func onResponseTrailers(id, n uint32) uint32 {
	logf("probe response_trailers:", kv("id", id), kv("n", n))
	return 0
}

//go:wasmexport proxy_on_log
func onLog(id uint32) {
	path, rp := abi.GetHeader(abi.RequestHeaders, ":path")
	_, rt := abi.GetHeader(abi.RequestTrailers, "x-t")
	status, rs := abi.GetHeader(abi.ResponseHeaders, ":status")
	logf("probe log:", kv("id", id), kvs("path", path), kv("path_status", rp), kv("request_trailers", rt),
		kvs("status", status), kv("status_status", rs))
}

//go:wasmexport proxy_on_done
func onDone(id uint32) uint32 {
	logf("probe done:", kv("id", id))
	return 1
}

//go:wasmexport proxy_on_delete
func onDelete(id uint32) {
	delete(streams, id)
	logf("probe delete:", kv("id", id))
}

//go:wasmexport proxy_on_tick
func onTick(id uint32) {
	if paused == 0 {
		return
	}
	s := paused
	paused = 0
	abi.SetTickPeriod(0)
	r1 := abi.SetEffectiveContext(s)
	r2 := abi.ContinueStream(0)
	logf("probe tick:", kv("root", id), kv("stream", s), kv("effective", r1), kv("continue", r2))
}
