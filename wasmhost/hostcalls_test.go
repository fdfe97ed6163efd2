package wasmhost

import (
	"fmt"
	"strings"
	"testing"
)

// pairsBytes is the serialized size of a header map in the ABI's pairs encoding (§1.6):
// 4 + Σ(8 + len(key) + 1 + len(value) + 1). Written here from the spec, not from the host.
func pairsBytes(h Headers) int {
	n := 4
	for _, kv := range h {
		n += 8 + len(kv[0]) + 1 + len(kv[1]) + 1
	}
	return n
}

func byteSize(h Headers) int {
	n := 0
	for _, kv := range h {
		n += len(kv[0]) + len(kv[1])
	}
	return n
}

// TestHeaderMapHostcalls checks get/add/replace/remove/pairs/size against Envoy's answers:
// case-insensitive keys, the first value of a repeated header, NotFound 1 for a missing key,
// BadArgument 2 for a map type > 7, Ok 0 when removing a missing key, ptr=0,size=0 without an
// allocation for an empty value.
func TestHeaderMapHostcalls(t *testing.T) {
	for _, p := range profilesUnderTest {
		t.Run(string(p), func(t *testing.T) {
			h := newHost(t, "probe", Options{Profile: p})
			in := req("headers", [2]string{"X-Multi", "1"}, [2]string{"x-multi", "2"}, [2]string{"x-empty", ""},
				[2]string{"x-removed", "r"}, [2]string{"x-replaced", "old"}, [2]string{"x-replaced", "old2"})
			lower := make(Headers, len(in))
			for i, kv := range in {
				lower[i] = [2]string{strings.ToLower(kv[0]), kv[1]}
			}
			s := h.NewStream()
			r := s.RequestHeaders(in, true)
			if r.Action != Continue || r.Status != "Continue" || !r.EndOfStream {
				t.Fatalf("RequestHeaders = %+v, want Continue with end of stream", r)
			}
			wantOut := Headers{}
			for _, kv := range lower {
				if kv[0] != "x-removed" && kv[0] != "x-replaced" {
					wantOut = append(wantOut, kv)
				}
			}
			wantOut = append(wantOut, [2]string{"x-added", "one"}, [2]string{"x-replaced", "new"})
			if !equalHeaders(r.Headers, wantOut) {
				t.Errorf("headers passed upstream:\n got %v\nwant %v", r.Headers, wantOut)
			}
			want := fmt.Sprintf(`probe headers: path="/p" path_status=0 multi="1" multi_status=0 missing=1 bad_type=2 `+
				`empty_ptr=0 empty_size=0 empty_status=0 empty_allocs=0 pairs=%d pairs_size=%d pairs_status=0 first=":method" `+
				`add=0 replace=0 remove=0 remove_missing=0 size=%d size_status=0 size_bad=2`,
				len(lower), pairsBytes(lower), byteSize(wantOut))
			if got := lastLine(t, h, "probe headers:"); got != want {
				t.Errorf("\n got %s\nwant %s", got, want)
			}
			// In on_response_headers the request headers are gone: get answers BadArgument,
			// pairs an empty map (ptr 0, size 0) with Ok, properties NotFound.
			s.ResponseHeaders(Headers{{":status", "200"}}, true)
			want = `probe response_headers: id=2 n=1 eos=1 scenario="headers" request_get=2 request_pairs=0 request_pairs_size=0 ` +
				`request_pairs_ptr=0 request_pairs_status=0 request_property=1 headers=":status=200"`
			if got := lastLine(t, h, "probe response_headers:"); got != want {
				t.Errorf("\n got %s\nwant %s", got, want)
			}
			// In on_log request and response headers are readable again, request trailers not.
			want = `probe log: id=2 path="/p" path_status=0 request_trailers=1 status="200" status_status=0`
			if got := lastLine(t, h, "probe log:"); got != want {
				t.Errorf("\n got %s\nwant %s", got, want)
			}
		})
	}
}

// TestSetHeaderMapPairs: set_header_map_pairs replaces the map; malformed pairs parse as an
// empty list, which empties the map (Envoy removes every key first).
func TestSetHeaderMapPairs(t *testing.T) {
	h := newHost(t, "probe", Options{})
	r := h.NewStream().RequestHeaders(req("set-pairs"), true)
	want := Headers{{":method", "GET"}, {":path", "/rewritten"}, {"x-new", "v"}}
	if !equalHeaders(r.Headers, want) {
		t.Errorf("set pairs: got %v, want %v", r.Headers, want)
	}
	r = h.NewStream().RequestHeaders(req("set-pairs-bad"), true)
	if len(r.Headers) != 0 || lastLine(t, h, "probe set_pairs_bad:") != "probe set_pairs_bad: status=0" {
		t.Errorf("malformed pairs: headers %v, %s; want an empty map and Ok", r.Headers, lastLine(t, h, "probe set_pairs_bad:"))
	}
}

// TestBufferHostcalls: VM configuration always readable; plugin configuration only in
// on_configure (NotFound 1 elsewhere); buffer type > 8 is BadArgument; a body buffer outside
// its callback is empty; immutable buffers refuse set_buffer_bytes (BadArgument); no callout
// body outside on_http_call_response (NotFound).
func TestBufferHostcalls(t *testing.T) {
	for _, p := range profilesUnderTest {
		t.Run(string(p), func(t *testing.T) {
			h := newHost(t, "probe", Options{Profile: p, VMConfig: []byte("vmcfg"), PluginConfig: []byte(`{"a":1}`)})
			if got, want := lastLine(t, h, "probe configure:"), `probe configure: id=1 size=7 status=0 config="{\"a\":1}"`; got != want {
				t.Errorf("\n got %s\nwant %s", got, want)
			}
			h.NewStream().RequestHeaders(req("buffers"), true)
			want := `probe buffers: plugin_config=1 vm="vmcfg" vm_status=0 vm_part="cfg" vm_part_status=0 past_len=0 past_status=0 ` +
				`bad_type=2 body_len=0 body_status=0 set_body=2 set_vm=2 vm_len=5 vm_len_status=0 status_plugin_config=1 callout_body=1`
			if got := lastLine(t, h, "probe buffers:"); got != want {
				t.Errorf("\n got %s\nwant %s", got, want)
			}
		})
	}
}

// TestMetrics: ids 4/5/6 stepping by 4, Envoy's increment/record/get answers, and the stat
// names Envoy exposes ("wasmcustom." + name).
func TestMetrics(t *testing.T) {
	h := newHost(t, "probe", Options{})
	if got, want := lastLine(t, h, "probe vm_start:"), `probe vm_start: id=1 size=0 vmcfg_status=0 vmcfg="" counter=4 gauge=5 histogram=6 counter2=8 define_status=0`; got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
	h.NewStream().RequestHeaders(req("metrics"), true)
	want := `probe metrics: inc=0 inc_zero=2 inc_negative=2 gauge_inc=0 gauge=-3 gauge_status=0 hist_inc=2 hist_record=0 ` +
		`counter_record=0 counter=6 counter_status=0 hist_get=2 unknown_inc=1 unknown_record=1 gauge_set=0 gauge_after_set=42 ` +
		`define_bad_type=2 log_bad_level=2 log_level=2 log_level_status=0`
	if got := lastLine(t, h, "probe metrics:"); got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
	m := h.Metrics()
	for name, v := range map[string]int64{"wasmcustom.probe_requests": 6, "wasmcustom.probe_inflight": 42, "wasmcustom.probe_sizes": 1, "wasmcustom.probe_second": 0} {
		if m[name] != v {
			t.Errorf("Metrics()[%q] = %d, want %d (all: %v)", name, m[name], v, m)
		}
	}
	if got := h.HistogramSamples("wasmcustom.probe_sizes"); len(got) != 1 || got[0] != 10 {
		t.Errorf("histogram samples = %v, want [10]", got)
	}
}

// TestMiscHostcalls: effective context, stream control codes, proxy_done, properties,
// callouts.
func TestMiscHostcalls(t *testing.T) {
	h := newHost(t, "probe", Options{PluginName: "cors", RootID: "root-a"})
	r := h.NewStream().RequestHeaders(req("misc"), true)
	if r.Action != Continue {
		t.Fatalf("RequestHeaders = %+v", r)
	}
	want := `probe misc: effective_unknown=2 effective_self=0 continue_upstream=12 continue_bad=2 close_bad=2 done=1 ` +
		`plugin_name="cors" plugin_name_status=0 root_id="root-a" root_id_status=0 path="/p" path_status=0 method="GET" ` +
		`method_status=0 header="misc" header_status=0 unknown_property=1 http_call=2`
	if got := lastLine(t, h, "probe misc:"); got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
	// A local reply from a root context (on_configure) is a no-op answering Ok.
	if got := lastLine(t, h, "probe configure_reply:"); got != "probe configure_reply: status=0" {
		t.Errorf("got %s", got)
	}
}

// TestLogLevel: lines below the wasm logger level are dropped (and proxy_get_log_level
// reports the level).
func TestLogLevel(t *testing.T) {
	h := newHost(t, "probe", Options{LogLevel: LevelWarn})
	if n := len(messages(h, "")); n != 0 {
		t.Errorf("%d info lines recorded at level warning: %v", n, messages(h, ""))
	}
}

// TestWASI checks each WASI function's errno and output per profile (spec §2).
func TestWASI(t *testing.T) {
	for _, p := range profilesUnderTest {
		t.Run(string(p), func(t *testing.T) {
			h := newHost(t, "wasiprobe", Options{Profile: p, Env: map[string]string{"B": "two", "A": "1"}})
			h.NewStream().RequestHeaders(req(""), true)
			poll := "poll_oneoff=52/77" // ENOSYS, nevents untouched
			if p == Envoy139 {
				poll = "poll_oneoff=0/0"
			}
			want := `wasi set_flags=52 fdstat1=0/64 fdstat3=8 path_open=44 prestat=8 prestat_dir_name=52 fd_read=52 ` +
				`fd_write3=8 fd_write1=0/13 fd_write2=0 clock0=0 clock1=0 clock2=58 random64k=0 random64k1=28 ` +
				`args_sizes=0/0/0 environ=0/2/"A=1;B=two" ` + poll + ` sched_yield=0`
			if got := lastLine(t, h, "wasi "); got != want {
				t.Errorf("\n got %s\nwant %s", got, want)
			}
			var stdout, stderr *LogEntry
			for _, e := range h.Logs() {
				switch {
				case e.Source == SourceStdout && strings.HasPrefix(e.Message, "hello"):
					stdout = &e
				case e.Source == SourceStderr && strings.HasPrefix(e.Message, "hello"):
					stderr = &e
				}
			}
			// One log line per fd_write, one trailing newline trimmed; fd 1 info, fd 2 error.
			if stdout == nil || stdout.Message != "hello stdout" || stdout.Level != LevelInfo {
				t.Errorf("stdout line = %+v, want info %q", stdout, "hello stdout")
			}
			if stderr == nil || stderr.Message != "hello stderr\n" || stderr.Level != LevelError {
				t.Errorf("stderr line = %+v, want error %q", stderr, "hello stderr\n")
			}
		})
	}
}

// TestHostArgs: the argument helper answers with the first failure in argument order, reads
// nothing and writes nothing after it, and each host function checks in Envoy's order (a bad
// type before the memory it names, except proxy_define_metric, which reads the name first).
func TestHostArgs(t *testing.T) {
	h := newHost(t, "noop", Options{})
	v := h.workers[0].vm
	v.mu.Lock()
	defer v.mu.Unlock()
	out := uint64(v.mem.Size()) // one past the end of guest memory
	const scratch = 16          // a guest address in the module's data
	orig, _ := v.mem.ReadUint32Le(scratch)

	a := hostArgs{v: v, s: []uint64{9, out, 4, scratch, 0xffffffff_00000007}}
	if typ := a.enum(mapMax); typ != 9 || a.res != resultBadArgument {
		t.Fatalf("enum(9) = %d, %d; want 9, BadArgument", typ, a.res)
	}
	if b := a.bytes(); b != nil || a.res != resultBadArgument {
		t.Fatalf("bytes after a failure = %v, %d; want nil and the first failure", b, a.res)
	}
	if r := a.putU32(0xdeadbeef); r != resultBadArgument {
		t.Fatalf("putU32 after a failure = %d", r)
	}
	if got, _ := v.mem.ReadUint32Le(scratch); got != orig {
		t.Fatalf("putU32 after a failure wrote %#x", got)
	}
	if x := a.u32(); x != 7 {
		t.Fatalf("u32 of an i32 with upper bits set = %#x, want 7", x)
	}

	a = hostArgs{v: v, s: []uint64{1, out, 4, 99}}
	if a.enum(mapMax); !a.ok() {
		t.Fatalf("enum(1) failed: %d", a.res)
	}
	if a.bytes(); a.res != resultInvalidMemAccess {
		t.Fatalf("bytes out of memory = %d, want InvalidMemoryAccess", a.res)
	}

	a = hostArgs{v: v, s: []uint64{scratch, 4, out - 2}}
	if s := a.string(); len(s) != 4 || !a.ok() {
		t.Fatalf("string(scratch, 4) = %q, %d", s, a.res)
	}
	if r := a.putU32(1); r != resultInvalidMemAccess {
		t.Fatalf("putU32 across the end of memory = %d, want InvalidMemoryAccess", r)
	}

	for _, c := range []struct {
		fn   string
		args []uint64
		want wasmResult
	}{
		{"proxy_log", []uint64{9, out, 4}, resultBadArgument},
		{"proxy_log", []uint64{1, out, 4}, resultInvalidMemAccess},
		{"proxy_get_header_map_value", []uint64{9, out, 4, 0, 0}, resultBadArgument},
		{"proxy_define_metric", []uint64{9, out, 4, 0}, resultInvalidMemAccess},
		{"proxy_define_metric", []uint64{9, scratch, 4, 0}, resultBadArgument},
		{"proxy_send_local_response", []uint64{200, 0, 0, out, 4, 0, 0, 0}, resultInvalidMemAccess},
		{"proxy_http_call", []uint64{0, 0, 0, 0, 0, 0, 0, 0, 1000, out}, resultInvalidMemAccess},
		{"proxy_http_call", []uint64{0, 0, 0, 0, 0, 0, 0, 0, 1000, scratch}, resultBadArgument},
		{"proxy_grpc_send", []uint64{2, out, 4, 0}, resultInvalidMemAccess},
		{"proxy_grpc_send", []uint64{1, scratch, 4, 0}, resultBadArgument},
		{"proxy_set_shared_data", []uint64{out, 4, 0, 0, 0}, resultInvalidMemAccess},
	} {
		s := append([]uint64(nil), c.args...)
		envImpls[c.fn](v, s)
		if got := wasmResult(s[0]); got != c.want {
			t.Errorf("%s%v = %d, want %d", c.fn, c.args, got, c.want)
		}
	}
}
