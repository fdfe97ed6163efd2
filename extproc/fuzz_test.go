package extproc

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/testing/casetable"
	"github.com/s3cors/s3cors/internal/testing/extproctest"
)

// recordStream replays fixed messages to Process and records its answers as a client
// receives them.
type recordStream struct {
	grpc.ServerStream
	msgs []*extprocv3.ProcessingRequest
	sent []*extprocv3.ProcessingResponse
}

func (s *recordStream) Context() context.Context                   { return context.Background() }
func (s *recordStream) Send(m *extprocv3.ProcessingResponse) error { return s.SendMsg(m) }
func (s *recordStream) SendMsg(m any) error {
	resp, err := decodeSent(m)
	if err != nil {
		return err
	}
	s.sent = append(s.sent, resp)
	return nil
}
func (s *recordStream) RecvMsg(m any) error {
	msg, err := s.Recv()
	if err != nil {
		return err
	}
	return feedRequest(msg, m)
}
func (s *recordStream) Recv() (*extprocv3.ProcessingRequest, error) {
	if len(s.msgs) == 0 {
		return nil, io.EOF
	}
	m := s.msgs[0]
	s.msgs = s.msgs[1:]
	return m, nil
}

// FuzzRequest sends arbitrary request headers (as Envoy would pass them: no CR, LF or NUL)
// and an upstream answer through Process and checks what Envoy would receive: a reply exactly
// when the evaluator says Reply, with a valid status, valid header names and values, no
// headers Envoy owns, and a well-formed XML body; otherwise CONTINUE, and a response mutation
// only for streams that asked for the response headers.
func FuzzRequest(f *testing.F) {
	for _, tb := range tablesForFuzz(f) {
		for _, c := range tb.Cases {
			origin, _ := c.Request.Get("Origin")
			acrm, _ := c.Request.Get("Access-Control-Request-Method")
			acrh, _ := c.Request.Get("Access-Control-Request-Headers")
			f.Add(c.Request.Method, c.Request.Authority, c.Request.Path, origin, acrm, acrh, "Accept-Encoding")
		}
	}
	lp, err := LoadConfig("fuzz.json", []byte(benchConfig))
	if err != nil {
		f.Fatal(err)
	}
	srv := NewServer(NewPolicyHolder(lp), ServerOptions{Logger: discardLogger()})
	f.Fuzz(func(t *testing.T, method, authority, path, origin, acrm, acrh, vary string) {
		for _, v := range []string{method, authority, path, origin, acrm, acrh, vary} {
			if strings.ContainsAny(v, "\r\n\x00") {
				return // Envoy's codecs never let these through
			}
		}
		req := casetable.Request{Method: method, Authority: authority, Path: path}
		for _, h := range [][2]string{{"origin", origin}, {"access-control-request-method", acrm}, {"access-control-request-headers", acrh}} {
			if h[1] != "" {
				req.Headers = append(req.Headers, casetable.Header{h[0], h[1]})
			}
		}
		st := &recordStream{msgs: []*extprocv3.ProcessingRequest{
			extproctest.RequestHeaders(req),
			extproctest.ResponseHeaders([]casetable.Header{{":status", "200"}, {"vary", vary}, {"access-control-allow-origin", "*"}}),
		}}
		err := srv.Process(st)
		if method == "" {
			if err == nil {
				t.Fatal("no :method accepted")
			}
			return
		}
		if err != nil {
			t.Fatalf("Process: %v", err)
		}
		if len(st.sent) == 0 {
			t.Fatal("no answer")
		}

		var d evaluator.Decision
		lp.Policy.Evaluate(&evaluator.Request{Method: method, Authority: authority, Path: path,
			Origin: origin, HasOrigin: origin != "", RequestMethod: acrm, HasRequestMethod: acrm != "",
			RequestHeaders: acrh, HasRequestHeaders: acrh != ""}, &d)
		if method == "CONNECT" && path == "" {
			d.Outcome = evaluator.PassThrough
		}
		first := st.sent[0]
		if ir := first.GetImmediateResponse(); ir != nil {
			if d.Outcome != evaluator.Reply {
				t.Fatalf("immediate response for outcome %s", outcomeNames[d.Outcome])
			}
			if c := ir.GetStatus().GetCode(); c != 200 && c != 400 && c != 403 {
				t.Fatalf("status %d", c)
			}
			if err := checkMutation(ir.GetHeaders()); err != nil {
				t.Fatal(err)
			}
			if len(ir.GetBody()) > 0 {
				var e struct{ Code string }
				if err := xml.Unmarshal(ir.GetBody(), &e); err != nil || e.Code == "" {
					t.Fatalf("body is not an S3 error document (%v): %q", err, ir.GetBody())
				}
			}
			if len(st.sent) != 1 {
				t.Fatalf("%d answers after an immediate response", len(st.sent)-1)
			}
			return
		}
		if d.Outcome == evaluator.Reply || first.GetRequestHeaders() == nil {
			t.Fatalf("outcome %s answered %v", outcomeNames[d.Outcome], first)
		}
		wantsResponse := d.EditsResponse()
		if (first.GetModeOverride() == nil) != wantsResponse || (len(st.sent) == 2) != wantsResponse {
			t.Fatalf("outcome %s strip %v: mode_override %v, %d answers", outcomeNames[d.Outcome], d.StripUpstream, first.GetModeOverride(), len(st.sent))
		}
		if wantsResponse {
			m := st.sent[1].GetResponseHeaders().GetResponse().GetHeaderMutation()
			if err := checkMutation(m); err != nil {
				t.Fatal(err)
			}
			if d.StripUpstream && !contains(m.GetRemoveHeaders(), "access-control-allow-origin") {
				t.Fatalf("the store's access-control-allow-origin is not removed: %v", m)
			}
		}
	})
}

// checkMutation checks what Envoy's MutationUtils would reject or ignore.
func checkMutation(m *extprocv3.HeaderMutation) error {
	seen := map[string]bool{}
	for _, o := range m.GetSetHeaders() {
		h := o.GetHeader()
		k := h.GetKey()
		if k == "" || k != strings.ToLower(k) || strings.ContainsAny(k, " :\t\r\n") {
			return fmt.Errorf("invalid header name %q", k)
		}
		if h.GetValue() != "" || strings.ContainsAny(string(h.GetRawValue()), "\r\n\x00") {
			return fmt.Errorf("header %q: value %q / raw %q", k, h.GetValue(), h.GetRawValue())
		}
		switch k {
		case "content-length", "connection", "transfer-encoding":
			return fmt.Errorf("sets %s, which Envoy owns", k)
		}
		if seen[k] {
			return fmt.Errorf("sets %s twice", k)
		}
		seen[k] = true
	}
	return nil
}

func tablesForFuzz(f *testing.F) []casetable.Table {
	ts, err := casetable.LoadDir(filepath.Join("..", "testdata", "cases"))
	if err != nil {
		return nil // the fuzz target still has its other seeds; TestCaseTable reports this
	}
	return ts
}
