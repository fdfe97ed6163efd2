package wasmhost

import (
	"reflect"
	"strings"
	"testing"
)

// TestLocalReplyThroughOwnCallbacks: proxy_send_local_response from on_request_headers is
// deferred until the callback returns, forces a stop although the plugin answered Continue,
// then traverses the filter chain: the plugin's on_response_headers(S, n, eos=0) and
// on_response_body(S, len, eos=1) see its own reply (":status", its headers lower-cased and
// added, then content-length from the body; its own content-type kept), and may change it;
// then on_log, on_done, on_delete.
func TestLocalReplyThroughOwnCallbacks(t *testing.T) {
	for _, p := range profilesUnderTest {
		t.Run(string(p), func(t *testing.T) {
			h := newHost(t, "localreply", Options{Profile: p})
			s := h.NewStream()
			r := s.RequestHeaders(req(""), false)
			if r.Action != Replied || r.Status != "StopAllIterationAndWatermark" || r.Headers != nil {
				t.Fatalf("RequestHeaders = %+v, want a local reply and nothing upstream", r)
			}
			body := `{"error":"unauthorized"}`
			want := &Reply{
				Status: 401,
				Headers: Headers{{":status", "401"}, {"content-type", "application/json"}, {"x-a", "1"},
					{"www-authenticate", "Basic"}, {"content-length", "24"}, {"x-own-reply", "seen"}},
				Body: []byte(body), Details: "not_allowed_here", GRPCStatus: -1, ViaFilterChain: true,
			}
			if !reflect.DeepEqual(r.Reply, want) {
				t.Errorf("reply\n got %+v\nwant %+v", r.Reply, want)
			}
			wantLogs := []string{
				"localreply sent status=0",
				"localreply response_headers n=5 eos=0 headers=:status=401,content-type=application/json,x-a=1,www-authenticate=Basic,content-length=24",
				"localreply response_body size=24 eos=1 body=" + body,
				"localreply log id=2", "localreply done id=2", "localreply delete id=2",
			}
			if got := messages(h, "worker 0"); !reflect.DeepEqual(got, wantLogs) {
				t.Errorf("callbacks\n got %q\nwant %q", got, wantLogs)
			}
			// The request direction is over: later frames reach nobody.
			if r := s.RequestBody([]byte("late"), true); r.Action != Replied {
				t.Errorf("body after the reply: %+v", r)
			}
			if hasLine(h, "must not happen") {
				t.Error("on_request_body ran after the local reply")
			}
		})
	}
}

// TestLocalReplyContentType: Envoy sets text/plain only when the plugin gave no content-type,
// always sets content-length from the body, and removes both for an empty body.
func TestLocalReplyContentType(t *testing.T) {
	h := newHost(t, "probe", Options{})
	for _, tt := range []struct {
		scenario string
		status   int
		headers  Headers
		body     string
		details  string
	}{
		{"reply", 403, Headers{{":status", "403"}, {"content-type", "application/xml"}, {"x-reply", "1"}, {"content-length", "21"}, {"x-probe-seen", "reply"}}, "<Error>denied</Error>", "probe__denied_here"},
		{"reply-plain", 418, Headers{{":status", "418"}, {"x-reply", "plain"}, {"content-length", "15"}, {"content-type", "text/plain"}, {"x-probe-seen", "reply-plain"}}, "short and stout", "teapot"},
		{"reply-empty", 204, Headers{{":status", "204"}, {"x-probe-seen", "reply-empty"}}, "", ""},
		// Malformed header pairs count as none, silently.
		{"reply-bad-headers", 400, Headers{{":status", "400"}, {"content-length", "3"}, {"content-type", "text/plain"}, {"x-probe-seen", "reply-bad-headers"}}, "bad", ""},
	} {
		r := h.NewStream().RequestHeaders(req(tt.scenario), true)
		if r.Action != Replied {
			t.Errorf("%s: %+v", tt.scenario, r)
			continue
		}
		if r.Reply.Status != tt.status || !equalHeaders(r.Reply.Headers, tt.headers) || string(r.Reply.Body) != tt.body || r.Reply.Details != tt.details {
			t.Errorf("%s:\n got %d %v %q %q\nwant %d %v %q %q", tt.scenario, r.Reply.Status, r.Reply.Headers, r.Reply.Body, r.Reply.Details,
				tt.status, tt.headers, tt.body, tt.details)
		}
	}
}

// TestSecondLocalReply: a reply sent from the plugin's own on_response_headers for its first
// reply. Envoy 1.33 and later (no wasm-side guard since Envoy PR #36809) hand it to the filter
// manager, which, response headers existing but not sent yet, sends it straight to the client
// (sendDirectLocalReply): the client gets the second reply, the plugin never sees it.
func TestSecondLocalReply(t *testing.T) {
	h := newHost(t, "localreply", Options{})
	s := h.NewStream()
	r := s.RequestHeaders(req("", [2]string{"x-twice", "1"}), true)
	want := &Reply{Status: 500, Headers: Headers{{":status", "500"}, {"content-length", "12"}, {"content-type", "text/plain"}},
		Body: []byte("second reply"), Details: "second", GRPCStatus: -1}
	if r.Action != Replied || !reflect.DeepEqual(r.Reply, want) {
		t.Fatalf("reply\n got %+v\nwant %+v", r.Reply, want)
	}
	if hasLine(h, "localreply response_body") {
		t.Error("the plugin saw the first reply's body after sending a second reply")
	}
	if countLines(h, "localreply response_headers") != 1 || !hasLine(h, "localreply second status=0") {
		t.Errorf("logs: %v", messages(h, ""))
	}
}

// TestLocalReplyHEADAndGRPC: HEAD gets the headers (content-length of the body) and no body;
// a gRPC request gets a trailers-only reply (200, application/grpc, grpc-status mapped from
// the HTTP status, grpc-message).
func TestLocalReplyHEADAndGRPC(t *testing.T) {
	h := newHost(t, "localreply", Options{})
	head := Headers{{":method", "HEAD"}, {":path", "/"}, {":authority", "a"}}
	r := h.NewStream().RequestHeaders(head, true)
	if r.Reply == nil || len(r.Reply.Body) != 0 || r.Reply.Headers[4] != [2]string{"content-length", "24"} {
		t.Errorf("HEAD reply: %+v", r.Reply)
	}
	if got := lastLine(t, h, "localreply response_headers"); !strings.Contains(got, "eos=1") {
		t.Errorf("HEAD reply's headers not end of stream: %s", got)
	}

	grpc := Headers{{":method", "POST"}, {":path", "/svc/M"}, {":authority", "a"}, {"content-type", "application/grpc"}}
	r = h.NewStream().RequestHeaders(grpc, false)
	want := Headers{{":status", "200"}, {"content-type", "application/grpc"}, {"x-a", "1"}, {"www-authenticate", "Basic"},
		{"grpc-status", "16"}, {"grpc-message", `{"error":"unauthorized"}`}, {"x-own-reply", "seen"}}
	if r.Reply == nil || r.Reply.Status != 200 || !equalHeaders(r.Reply.Headers, want) || len(r.Reply.Body) != 0 {
		t.Errorf("gRPC reply:\n got %+v\nwant headers %v", r.Reply, want)
	}
}

// TestLocalReplyFromResponse: a reply from on_response_headers of an upstream response goes
// straight to the client; one from a body callback before the response starts goes through
// the chain.
func TestLocalReplyFromResponse(t *testing.T) {
	h := newHost(t, "probe", Options{})
	s := h.NewStream()
	s.RequestHeaders(req("resp-reply"), true)
	r := s.ResponseHeaders(Headers{{":status", "200"}, {"content-length", "3"}}, false)
	want := &Reply{Status: 502, Headers: Headers{{":status", "502"}, {"content-length", "12"}, {"content-type", "text/plain"}},
		Body: []byte("bad upstream"), Details: "from_response", GRPCStatus: -1}
	if r.Action != Replied || !reflect.DeepEqual(r.Reply, want) {
		t.Errorf("reply\n got %+v\nwant %+v", r.Reply, want)
	}
	if r := s.ResponseBody([]byte("abc"), true); r.Action != Replied {
		t.Errorf("upstream body after the reply: %+v", r)
	}

	s = h.NewStream()
	s.RequestHeaders(req("body-reply"), false)
	r = s.RequestBody([]byte("x"), true)
	if r.Action != Replied || r.Reply.Status != 413 || !r.Reply.ViaFilterChain {
		t.Errorf("reply from on_request_body: %+v", r.Reply)
	}
}
