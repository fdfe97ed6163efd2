package extproc

import (
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/testing/casetable"
	"github.com/s3cors/s3cors/internal/testing/extproctest"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// tables returns the case tables (extproctest.Tables).
func tables(t testing.TB) []casetable.Table { return extproctest.Tables(t) }

func tablePolicy(t testing.TB, tb casetable.Table) *LoadedPolicy {
	t.Helper()
	lp, err := LoadConfig(tb.File+".json", tb.Config)
	if err != nil {
		t.Fatalf("%s: %v", tb.File, err)
	}
	return lp
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestCaseTable runs every shared case through the server as Envoy would: over a real gRPC
// connection on loopback, one stream per request, with Envoy honouring mode_override and,
// again, with an Envoy that ignores it (allow_mode_override false); then over a grpc.Server
// built without ServerCodecOption (gRPC's own proto codec, as for a user who registers the
// server in a grpc.Server of theirs); and once more over the channel-backed fake stream. Each
// answer must be what the case wants, and agree with the evaluator's own decision.
func TestCaseTable(t *testing.T) {
	for _, tb := range tables(t) {
		t.Run(filepath.Base(tb.File), func(t *testing.T) {
			lp := tablePolicy(t, tb)
			srv := NewServer(NewPolicyHolder(lp), ServerOptions{Logger: discardLogger()})
			client := extproctest.Loopback(t, srv, ServerCodecOption())
			protoClient := extproctest.Loopback(t, srv)
			for _, c := range tb.Cases {
				t.Run(c.Name, func(t *testing.T) {
					for _, e := range []extproctest.Envoy{{AllowModeOverride: true}, {AllowModeOverride: false}} {
						got, err := e.Do(t.Context(), client, c)
						if err != nil {
							t.Fatalf("allow_mode_override %v: %v", e.AllowModeOverride, err)
						}
						if err := c.Check(got); err != nil {
							t.Errorf("grpc, allow_mode_override %v: %v", e.AllowModeOverride, err)
						}
						if err := agreesWithEvaluator(lp.Policy, c, got); err != "" {
							t.Errorf("grpc, allow_mode_override %v: %s", e.AllowModeOverride, err)
						}
					}
					got, err := extproctest.Envoy{AllowModeOverride: true}.Do(t.Context(), protoClient, c)
					if err != nil {
						t.Fatalf("grpc without the wire codec: %v", err)
					}
					if err := c.Check(got); err != nil {
						t.Errorf("grpc without the wire codec: %v", err)
					}
					got, err = extproctest.Envoy{AllowModeOverride: true}.Exchange(startFake(t, srv), c)
					if err != nil {
						t.Fatalf("fake stream: %v", err)
					}
					if err := c.Check(got); err != nil {
						t.Errorf("fake stream: %v", err)
					}
				})
			}
		})
	}
}

// agreesWithEvaluator compares what the client saw with the evaluator's decision for the same
// request: a Reply is answered at the proxy with its status, body and headers (bar those
// Envoy owns and the per-reply ids); anything else reaches the upstream, and a Decorate
// carries the decision's CORS headers.
func agreesWithEvaluator(pol *evaluator.Policy, c casetable.Case, got casetable.Response) string {
	req := evaluator.Request{Method: c.Request.Method, Authority: c.Request.Authority, Path: c.Request.Path}
	req.Origin, req.HasOrigin = c.Request.Get("Origin")
	req.RequestMethod, req.HasRequestMethod = c.Request.Get("Access-Control-Request-Method")
	req.RequestHeaders, req.HasRequestHeaders = c.Request.Get("Access-Control-Request-Headers")
	req.ForwardedHost, req.HasForwardedHost = c.Request.Joined("X-Forwarded-Host")
	req.Forwarded, req.HasForwarded = c.Request.Joined("Forwarded")
	var d evaluator.Decision
	pol.Evaluate(&req, &d)
	if (d.Outcome == evaluator.Reply) == got.ReachedUpstream {
		return "evaluator outcome " + outcomeNames[d.Outcome] + ", but the request reached the upstream: " + strconv.FormatBool(got.ReachedUpstream)
	}
	var diffs []string
	switch d.Outcome {
	case evaluator.Reply:
		if got.Status != d.Status {
			diffs = append(diffs, "status "+strconv.Itoa(got.Status)+", evaluator "+strconv.Itoa(d.Status))
		}
		if !sameIgnoringIDs(string(got.Body), string(d.Body)) {
			diffs = append(diffs, "body differs from the evaluator's")
		}
	case evaluator.Decorate:
	default:
		return ""
	}
	for _, h := range d.Headers {
		key, ok := wireKey(h.Name)
		if !ok || key == "x-amz-request-id" || key == "x-amz-id-2" {
			continue
		}
		vs := got.Values(key)
		if key == "vary" && d.SetsHeaders() {
			continue // merged with the upstream's; the table checks the merge
		}
		if len(vs) != 1 || vs[0] != h.Value {
			diffs = append(diffs, key+" = "+strconv.Quote(strings.Join(vs, " | "))+", evaluator "+strconv.Quote(h.Value))
		}
	}
	return strings.Join(diffs, "; ")
}

// sameIgnoringIDs compares two reply bodies whose request and host ids differ by design.
func sameIgnoringIDs(got, want string) bool {
	mask := func(s string) string {
		for _, tag := range []string{"RequestId", "HostId"} {
			open, end := "<"+tag+">", "</"+tag+">"
			if i := strings.Index(s, open); i >= 0 {
				if j := strings.Index(s[i:], end); j >= 0 {
					s = s[:i+len(open)] + s[i+j:]
				}
			}
		}
		return s
	}
	return mask(got) == mask(want)
}

func bufferLogger(level slog.Level) (*slog.Logger, *testenv.SyncBuffer) {
	return testenv.BufferLogger(level)
}
