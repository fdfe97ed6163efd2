package wasmhost

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// streamLines returns the probe's lines for stream id in one VM, without their arguments.
func streamLines(h *Host, vm string, id uint32) []string {
	var out []string
	tag := fmt.Sprintf(" id=%d", id)
	for _, m := range messages(h, vm) {
		if !strings.Contains(m+" ", tag+" ") || strings.HasPrefix(m, "probe root_create") {
			continue
		}
		name, _, _ := strings.Cut(m, ":")
		out = append(out, strings.TrimPrefix(name, "probe "))
	}
	return out
}

// TestRootSequence: base VM runs only _initialize; the canary runs the root sequence
// (on_context_create(1,0), on_vm_start(1, vm config length), on_configure(1, plugin config
// length)) and is discarded without on_done/on_delete; every worker runs it again.
func TestRootSequence(t *testing.T) {
	h := newHost(t, "probe", Options{Workers: 2, VMConfig: []byte("vm"), PluginConfig: []byte("plugin")})
	want := map[string][]string{
		"base":   {"probe init"},
		"canary": {"probe init", "probe root_create: id=1", `probe vm_start: id=1 size=2`, `probe configure: id=1 size=6`, "probe configure_reply"},
	}
	want["worker 0"], want["worker 1"] = want["canary"], want["canary"]
	for vm, lines := range want {
		got := messages(h, vm)
		if len(got) != len(lines) {
			t.Fatalf("%s logged %d lines, want %d:\n%s", vm, len(got), len(lines), strings.Join(got, "\n"))
		}
		for i, l := range lines {
			if !strings.HasPrefix(got[i], l) {
				t.Errorf("%s line %d = %q, want prefix %q", vm, i, got[i], l)
			}
		}
	}
	if err := h.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Teardown: on_done(R) then, as it answered 1, on_delete(R), in each worker only.
	for _, vm := range []string{"worker 0", "worker 1"} {
		if got := strings.Join(messages(h, vm)[5:], "|"); got != "probe done: id=1|probe delete: id=1" {
			t.Errorf("%s teardown = %q", vm, got)
		}
	}
	if got := messages(h, "canary"); len(got) != 5 {
		t.Errorf("canary saw teardown callbacks: %v", got)
	}
}

// TestStreamSequence: one stream's callbacks in Envoy's order, ending with log, done, delete.
func TestStreamSequence(t *testing.T) {
	for _, p := range profilesUnderTest {
		t.Run(string(p), func(t *testing.T) {
			h := newHost(t, "probe", Options{Profile: p})
			s := h.NewStream()
			steps := []Result{
				s.RequestHeaders(req(""), false),
				s.RequestBody([]byte("abc"), false),
				s.RequestTrailers(Headers{{"x-t", "1"}}),
				s.ResponseHeaders(Headers{{":status", "200"}}, false),
				s.ResponseBody([]byte("xyz"), false),
				s.ResponseTrailers(Headers{{"x-rt", "2"}}),
			}
			for i, r := range steps {
				if r.Action != Continue {
					t.Errorf("step %d = %+v, want Continue", i, r)
				}
			}
			s.Done()
			s.Done() // idempotent
			want := []string{"stream_create", "request_headers", "request_body", "request_trailers",
				"response_headers", "response_body", "response_trailers", "log", "done", "delete"}
			if got := streamLines(h, "worker 0", 2); !reflect.DeepEqual(got, want) {
				t.Errorf("callbacks = %v\n want %v", got, want)
			}
			if got := lastLine(t, h, "probe request_headers:"); got != `probe request_headers: id=2 n=4 eos=0 scenario=""` {
				t.Errorf("got %s", got)
			}
			if got := lastLine(t, h, "probe request_trailers:"); got != `probe request_trailers: id=2 n=1 x-t="1" status=0` {
				t.Errorf("got %s", got)
			}
			if !equalHeaders(steps[2].Trailers, Headers{{"x-t", "1"}}) || !steps[2].EndOfStream {
				t.Errorf("trailers step = %+v", steps[2])
			}
			if string(steps[4].Body) != "xyz" {
				t.Errorf("response body passed on = %q", steps[4].Body)
			}
		})
	}
}

// TestContextIDs: one counter per VM from 1 (the root), never reused; streams spread
// round-robin over workers.
func TestContextIDs(t *testing.T) {
	h := newHost(t, "probe", Options{Workers: 2})
	var ids []uint32
	for i := 0; i < 5; i++ {
		s := h.NewStream()
		ids = append(ids, s.ID())
		s.RequestHeaders(req(""), true)
		s.Done()
	}
	// worker 0: 2, 3, 4; worker 1: 2, 3.
	if want := []uint32{2, 2, 3, 3, 4}; !reflect.DeepEqual(ids, want) {
		t.Errorf("stream ids = %v, want %v", ids, want)
	}
	if got := countLines(h, "probe stream_create: id=3 parent=1"); got != 2 {
		t.Errorf("id 3 created %d times, want once per worker", got)
	}
}

// TestAccessLogOnlyStream: a stream that never reached the plugin's request headers still gets
// on_context_create, on_log, on_done, on_delete.
func TestAccessLogOnlyStream(t *testing.T) {
	h := newHost(t, "probe", Options{})
	s := h.NewStream()
	s.Done()
	want := []string{"stream_create", "log", "done", "delete"}
	if got := streamLines(h, "worker 0", 2); !reflect.DeepEqual(got, want) {
		t.Errorf("callbacks = %v, want %v", got, want)
	}
}

// TestReturnValueMapping: raw answers map to Envoy's filter statuses (§1.8).
func TestReturnValueMapping(t *testing.T) {
	h := newHost(t, "probe", Options{})
	for scenario, want := range map[string]string{
		"":             "Continue",
		"ret2":         "Continue", // ContinueAndEndStream is mapped to Continue
		"pause":        "StopAllIterationAndWatermark",
		"pause-buffer": "StopAllIterationAndBuffer",
		"ret7":         "StopAllIterationAndWatermark",
		"reply":        "StopAllIterationAndWatermark", // a local reply forces a stop
	} {
		s := h.NewStream()
		r := s.RequestHeaders(req(scenario), true)
		if r.Status != want {
			t.Errorf("%q: status %q, want %q", scenario, r.Status, want)
		}
		s.Done()
	}
}

// TestStoppedHeadersBufferBody: after a stop from on_request_headers Envoy buffers body frames
// without calling the plugin; a StopAllIterationAndBuffer stop over the buffer limit gets 413.
func TestStoppedHeadersBufferBody(t *testing.T) {
	h := newHost(t, "probe", Options{BufferLimit: 8})
	s := h.NewStream()
	if r := s.RequestHeaders(req("pause"), false); r.Action != Stop {
		t.Fatalf("headers: %+v", r)
	}
	if r := s.RequestBody([]byte("0123456789abcdef"), false); r.Action != Stop || r.Status != "" {
		t.Errorf("body while stopped: %+v, want Stop without a callback", r)
	}
	if n := countLines(h, "probe request_body:"); n != 0 {
		t.Errorf("on_request_body ran %d times while headers were stopped", n)
	}
	s.Done()

	s = h.NewStream()
	s.RequestHeaders(req("pause-buffer"), false)
	r := s.RequestBody([]byte("0123456789"), false)
	if r.Action != Replied || r.Reply.Status != 413 || string(r.Reply.Body) != "Payload Too Large" || r.Reply.Details != "request_payload_too_large" {
		t.Errorf("over the buffer limit: %+v, want Envoy's 413", r)
	}
}

// TestBodyBuffering: StopIterationAndBuffer re-delivers the accumulated body; Envoy's
// set_buffer_bytes rules (start 0 replaces, start >= len appends, else BadArgument).
func TestBodyBuffering(t *testing.T) {
	h := newHost(t, "probe", Options{})
	s := h.NewStream()
	s.RequestHeaders(req("body-buffer"), false)
	if r := s.RequestBody([]byte("hello "), false); r.Action != Stop || r.Status != "StopIterationAndBuffer" {
		t.Fatalf("first chunk: %+v", r)
	}
	r := s.RequestBody([]byte("world"), true)
	if r.Action != Continue || string(r.Body) != ">HELLO WORLD!" || !r.EndOfStream {
		t.Errorf("second chunk: %+v, want body %q", r, ">HELLO WORLD!")
	}
	if got := lastLine(t, h, "probe body_buffer:"); got != "probe body_buffer: replace=0 append=0 middle=2 prepend=0" {
		t.Errorf("got %s", got)
	}
	sizes := []string{}
	for _, m := range messages(h, "") {
		if strings.HasPrefix(m, "probe request_body:") {
			sizes = append(sizes, strings.Fields(m)[3])
		}
	}
	if want := []string{"size=6", "size=11"}; !reflect.DeepEqual(sizes, want) {
		t.Errorf("on_request_body sizes = %v, want %v (the whole buffer when buffering)", sizes, want)
	}

	// Watermark: the next call sees only the new chunk; Continue releases both.
	s = h.NewStream()
	s.RequestHeaders(req("body-watermark"), false)
	s.RequestBody([]byte("hello "), false)
	if r := s.RequestBody([]byte("world"), true); string(r.Body) != "hello world" {
		t.Errorf("watermark: %+v", r)
	}
	if got := lastLine(t, h, "probe request_body:"); !strings.Contains(got, "size=5") {
		t.Errorf("watermark second call: %s", got)
	}
	// NoBuffer: the stopped chunk is dropped.
	s = h.NewStream()
	s.RequestHeaders(req("body-nobuffer"), false)
	s.RequestBody([]byte("hello "), false)
	if r := s.RequestBody([]byte("world"), true); string(r.Body) != "world" {
		t.Errorf("no-buffer: %+v", r)
	}
}

// TestTrailersAddedFromBody: trailers may be added from the last body callback.
func TestTrailersAddedFromBody(t *testing.T) {
	h := newHost(t, "probe", Options{})
	s := h.NewStream()
	s.RequestHeaders(req("trailers-add"), false)
	r := s.RequestBody([]byte("x"), true)
	if !equalHeaders(r.Trailers, Headers{{"x-trailer", "added"}}) || !r.EndOfStream || string(r.Body) != "x" {
		t.Errorf("result %+v, want the body then the added trailer", r)
	}
}

// TestResponseBodyMutation: the plugin rewrites the response body in on_response_body.
func TestResponseBodyMutation(t *testing.T) {
	h := newHost(t, "probe", Options{})
	s := h.NewStream()
	s.RequestHeaders(req("resp-upper"), true)
	s.ResponseHeaders(Headers{{":status", "200"}}, false)
	if r := s.ResponseBody([]byte("abc"), true); string(r.Body) != "ABC" {
		t.Errorf("response body = %q, want ABC", r.Body)
	}
}

// TestContinueFromTick: a stream stopped in on_request_headers is continued from on_tick with
// proxy_set_effective_context + proxy_continue_stream; the continue is deferred and releases
// the held headers.
func TestContinueFromTick(t *testing.T) {
	h := newHost(t, "probe", Options{})
	s := h.NewStream()
	if r := s.RequestHeaders(req("continue-on-tick"), true); r.Action != Stop {
		t.Fatalf("headers: %+v", r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := s.Wait(ctx)
	if r.Action != Continue || r.Headers == nil || !r.EndOfStream {
		t.Fatalf("after the tick: %+v", r)
	}
	if got := lastLine(t, h, "probe tick:"); got != "probe tick: root=1 stream=2 effective=0 continue=0" {
		t.Errorf("got %s", got)
	}
}

// TestCloseStream: proxy_close_stream resets the stream once the callback returns.
func TestCloseStream(t *testing.T) {
	h := newHost(t, "probe", Options{})
	s := h.NewStream()
	if r := s.RequestHeaders(req("close"), true); r.Action != Reset {
		t.Errorf("result %+v, want Reset", r)
	}
	if got := streamLines(h, "worker 0", 2); got[len(got)-1] != "delete" {
		t.Errorf("reset stream not completed: %v", got)
	}
}

// TestConcurrentStreams drives streams from several goroutines over two workers; callbacks
// into one VM are serialized.
func TestConcurrentStreams(t *testing.T) {
	h := newHost(t, "probe", Options{Workers: 2})
	done := make(chan error)
	for g := 0; g < 4; g++ {
		go func() {
			for i := 0; i < 25; i++ {
				s := h.NewStream()
				r := s.RequestHeaders(req("headers", [2]string{"x-removed", "1"}), true)
				if _, ok := r.Headers.Get("x-added"); !ok || r.Action != Continue {
					done <- fmt.Errorf("stream %d: %+v", s.ID(), r)
					return
				}
				s.ResponseHeaders(Headers{{":status", "204"}}, true)
			}
			done <- nil
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	if got := countLines(h, "probe delete:"); got != 100 {
		t.Errorf("%d streams deleted, want 100", got)
	}
}
