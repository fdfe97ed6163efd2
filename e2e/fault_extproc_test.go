package e2e_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/extprocd"
	"github.com/s3cors/s3cors/internal/testing/casetable"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// mixedRequests are the load of the fault tests: allowed and denied preflights, decorated and
// undecorated actual requests, and a request that is not ours.
func mixedRequests() []hostileRequest {
	return []hostileRequest{
		sitePreflight("origin", appOrigin, "access-control-request-method", "PUT", "access-control-request-headers", "x-amz-date, content-type"),
		sitePreflight("origin", evilOrigin, "access-control-request-method", "PUT"),
		actualRequest("GET", "/site/k", "origin", appOrigin),
		actualRequest("PUT", "/site/k", "origin", evilOrigin),
		actualRequest("GET", "/open/k", "origin", evilOrigin),
		preflightTo("s3.example.test", "/private/k", "origin", appOrigin, "access-control-request-method", "GET"),
		actualRequest("GET", "//not-a-bucket"),
	}
}

// TestFaultExtprocServerRestart kills the ext_proc server under load and starts it again on the
// same address. What Envoy does meanwhile is its configuration's business (failure_mode_allow:
// false answers the client 500, or status_on_error; true lets the request through unprocessed;
// RATIONALE.md); what our side must show is that streams fail cleanly with Unavailable, never
// with a wrong answer, and that new streams succeed once the server is back.
func TestFaultExtprocServerRestart(t *testing.T) {
	cfg, pol := hostilePolicy(t)
	s := listenExtproc(t, cfg)
	addr := s.addr
	// Envoy's gRPC client reconnects with backoff as grpc-go does; a short one keeps the test
	// quick.
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.6, MaxDelay: 200 * time.Millisecond}, MinConnectTimeout: time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := extprocv3.NewExternalProcessorClient(conn)

	want := map[int]string{}
	reqs := mixedRequests()
	var d evaluator.Decision
	for i, r := range reqs {
		want[i] = answerKey(evaluatorView(pol, r, &d))
	}

	var (
		phase     atomic.Int32 // 0 before the kill, 1 while down, 2 after the restart
		ok        [3]atomic.Int64
		failed    [3]atomic.Int64
		mu        sync.Mutex
		badCodes  = map[string]int{}
		wrong     []string
		stop      = make(chan struct{})
		wg        sync.WaitGroup
		ctx, done = context.WithCancel(context.Background())
	)
	defer done()
	for w := range 4 {
		wg.Go(func() {
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := phase.Load()
				r := i % len(reqs)
				got, err := extprocExchange(ctx, client, reqs[r], hostileUpstream)
				if phase.Load() != p {
					p = 1 // the server went down or came back during this exchange
				}
				if err != nil {
					failed[p].Add(1)
					if c := status.Code(err); c != codes.Unavailable {
						mu.Lock()
						badCodes[fmt.Sprintf("%v: %v", c, err)]++
						mu.Unlock()
					}
					time.Sleep(time.Millisecond)
					continue
				}
				ok[p].Add(1)
				if c := answerKey(got); c != want[r] {
					mu.Lock()
					wrong = append(wrong, fmt.Sprintf("request %d:\n%s\nwant\n%s", r, c, want[r]))
					mu.Unlock()
				}
			}
		})
	}

	testenv.Eventually(t, "200 exchanges before the kill", func() bool { return ok[0].Load() >= 200 })
	phase.Store(1)
	s.grpc.Stop() // abrupt: connections closed, streams in flight cut
	testenv.Eventually(t, "streams failing while the server is down", func() bool { return failed[1].Load() >= 20 })
	lis2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening again on %s: %v", addr, err)
	}
	s.serve(t, lis2)
	defer s.grpc.Stop()
	phase.Store(2)
	testenv.Eventually(t, "200 exchanges after the restart", func() bool { return ok[2].Load() >= 200 })
	close(stop)
	wg.Wait()

	t.Logf("before the kill: %d ok, %d failed; while down (or changing): %d ok, %d failed; after the restart: %d ok, %d failed",
		ok[0].Load(), failed[0].Load(), ok[1].Load(), failed[1].Load(), ok[2].Load(), failed[2].Load())
	if failed[0].Load() != 0 {
		t.Errorf("%d streams failed before the server was killed", failed[0].Load())
	}
	for c, n := range badCodes {
		t.Errorf("%d streams failed with a code other than Unavailable: %s", n, c)
	}
	for _, w := range wrong {
		t.Errorf("wrong answer: %s", w)
	}
}

// TestFaultExtprocClientCancel: Envoy resets the ext_proc stream when the downstream request
// goes away, at any point. The server must let go of the stream each time, count no error,
// and keep serving.
func TestFaultExtprocClientCancel(t *testing.T) {
	s := startExtproc(t, hostileConfig(t))
	decorated := envoyRequestHeaders(actualRequest("GET", "/site/k", "origin", appOrigin))
	preflight := envoyRequestHeaders(sitePreflight("origin", appOrigin, "access-control-request-method", "PUT"))
	steps := map[string]func(extprocv3.ExternalProcessor_ProcessClient) error{
		"before sending anything": func(extprocv3.ExternalProcessor_ProcessClient) error { return nil },
		"after the request headers of an actual request (the server awaits the response headers)": func(st extprocv3.ExternalProcessor_ProcessClient) error {
			if err := st.Send(decorated); err != nil {
				return err
			}
			_, err := st.Recv()
			return err
		},
		"after sending a preflight, before reading the answer": func(st extprocv3.ExternalProcessor_ProcessClient) error {
			return st.Send(preflight)
		},
	}
	for name, step := range steps {
		t.Run(name, func(t *testing.T) {
			for range 50 {
				ctx, cancel := context.WithCancel(t.Context())
				st, err := s.client.Process(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if err := step(st); err != nil {
					t.Fatal(err)
				}
				cancel()
			}
			testenv.Eventually(t, "every cancelled stream released", func() bool { return s.server.ActiveStreams() == 0 })
			got, err := extprocExchange(t.Context(), s.client, sitePreflight("origin", appOrigin, "access-control-request-method", "PUT"), hostileUpstream)
			if err != nil || got.Status != 200 {
				t.Fatalf("a stream after the cancellations: %d, %v", got.Status, err)
			}
		})
	}
	if n := counterValue(t, s.metrics, `s3cors_extproc_errors_total{kind="recv"}`); n != 0 {
		t.Errorf("%v receive errors counted for cancellations, want 0", n)
	}
}

// TestFaultExtprocSlowClients: streams that stall (an Envoy whose upstream never answers, so
// the response headers never come) and streams that do not read a large answer (flow control
// holds the server's send) hold nothing but their own goroutine: other streams are served
// meanwhile, and the stalled ones get their exact answers when they go on.
func TestFaultExtprocSlowClients(t *testing.T) {
	cfg, pol := hostilePolicy(t)
	s := startExtproc(t, cfg)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	// Envoy opens as many HTTP/2 connections as it needs; grpc-go's client allows itself 100
	// streams per connection when the server sets no limit, so the held streams get
	// connections of their own.
	held := func() extprocv3.ExternalProcessorClient {
		conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return extprocv3.NewExternalProcessorClient(conn)
	}
	// 90 stalled after the request headers of an actual request.
	stalledClient, unreadClient := held(), held()
	var stalled []extprocv3.ExternalProcessor_ProcessClient
	for range 90 {
		st, err := stalledClient.Process(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Send(envoyRequestHeaders(actualRequest("GET", "/site/k", "origin", appOrigin))); err != nil {
			t.Fatal(err)
		}
		stalled = append(stalled, st)
	}
	// 20 not reading a preflight answer of ~200 KB (10,000 echoed names), over the stream's
	// 64 KB flow-control window.
	big := sitePreflight("origin", appOrigin, "access-control-request-method", "PUT", "access-control-request-headers", manyNames("x-amz-meta-", 10000, ","))
	var unread []extprocv3.ExternalProcessor_ProcessClient
	for range 20 {
		st, err := unreadClient.Process(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Send(envoyRequestHeaders(big)); err != nil {
			t.Fatal(err)
		}
		unread = append(unread, st)
	}
	// The unread answers may already sit in transport buffers, their streams ended on the
	// server's side; the stalled ones are open until they go on.
	testenv.Eventually(t, "the 90 stalled streams open", func() bool { return s.server.ActiveStreams() >= 90 })

	var d evaluator.Decision
	reqs := mixedRequests()
	for i := range 300 {
		r := reqs[i%len(reqs)]
		got, err := extprocExchange(ctx, s.client, r, hostileUpstream)
		if err != nil {
			t.Fatalf("exchange %d beside the stalled streams: %v", i, err)
		}
		if c, w := answerKey(got), answerKey(evaluatorView(pol, r, &d)); c != w {
			t.Fatalf("exchange %d:\n%s\nwant\n%s", i, c, w)
		}
	}

	wantBig := answerKey(evaluatorView(pol, big, &d))
	for i, st := range unread {
		resp, err := st.Recv()
		if err != nil {
			t.Fatalf("unread stream %d: %v", i, err)
		}
		got, err := localReplyView(resp)
		if err != nil {
			t.Fatalf("unread stream %d: %v", i, err)
		}
		if c := answerKey(got); c != wantBig {
			t.Fatalf("unread stream %d got, once read:\n%s\nwant\n%s", i, clipValue(c), clipValue(wantBig))
		}
		if err := drainStream(st); err != nil {
			t.Fatalf("unread stream %d: %v", i, err)
		}
	}
	for i, st := range stalled {
		if _, err := st.Recv(); err != nil {
			t.Fatalf("stalled stream %d: %v", i, err)
		}
		if err := st.Send(envoyResponseHeaders(hostileUpstream)); err != nil {
			t.Fatalf("stalled stream %d: %v", i, err)
		}
		if _, err := st.Recv(); err != nil {
			t.Fatalf("stalled stream %d, response headers: %v", i, err)
		}
		if err := drainStream(st); err != nil {
			t.Fatalf("stalled stream %d: %v", i, err)
		}
	}
	testenv.Eventually(t, "every stream closed", func() bool { return s.server.ActiveStreams() == 0 })
}

// localReplyView is the client's view of an ImmediateResponse answer.
func localReplyView(resp *extprocv3.ProcessingResponse) (casetable.Response, error) {
	ir := resp.GetImmediateResponse()
	if ir == nil {
		return casetable.Response{}, fmt.Errorf("answer is %T, want an immediate response", resp.GetResponse())
	}
	got := casetable.Response{Status: int(ir.GetStatus().GetCode()), Body: ir.GetBody()}
	for _, h := range ir.GetHeaders().GetSetHeaders() {
		got.Headers = append(got.Headers, casetable.Header{h.GetHeader().GetKey(), headerValueOf(h.GetHeader())})
	}
	return got, nil
}

// counterValue reads one sample of the server's registry, by its text-format name and labels.
func counterValue(t testing.TB, m *extprocd.Metrics, sample string) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, metric := range mf.GetMetric() {
			name := mf.GetName()
			if len(metric.GetLabel()) > 0 {
				name += "{"
				for i, l := range metric.GetLabel() {
					if i > 0 {
						name += ","
					}
					name += l.GetName() + "=" + strconv.Quote(l.GetValue())
				}
				name += "}"
			}
			if name != sample {
				continue
			}
			switch {
			case metric.GetCounter() != nil:
				return metric.GetCounter().GetValue()
			case metric.GetGauge() != nil:
				return metric.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no sample %s", sample)
	return 0
}

// stormConfig is configuration n of the reload storm: one bucket whose single rule allows
// origin https://c<n>.example, with MaxAgeSeconds n and ExposeHeaders x-c<n>, so that every
// header of an answer says which configuration gave it.
func stormConfig(n int) []byte {
	return fmt.Appendf(nil, `{"buckets": {"b": [{"AllowedOrigins": ["https://c%d.example"], "AllowedMethods": ["GET"], "ExposeHeaders": ["x-c%d"], "MaxAgeSeconds": %d}]}}`, n, n, n)
}

var stormBad = [][]byte{
	[]byte(`{"buckets": {"b": [{"AllowedOrigins": ["https://*.*.example"], "AllowedMethods": ["GET"]}]}}`),
	[]byte(`{"buckets": {"b": [`),
	[]byte(``),
	[]byte(`{"buckets": {"b": [{"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}]}, "extra": 1}`),
}

// TestFaultExtprocReloadStorm rewrites the configuration file of a running `s3cors extproc`
// (an extprocd.Daemon) hundreds of times, good and bad, in place and by rename, while streams run.
// Every answer must come whole from one configuration (run it under -race as well), and when
// the storm ends on a bad file, the last good configuration is the one live.
func TestFaultExtprocReloadStorm(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s3cors.json")
	if err := os.WriteFile(path, stormConfig(0), 0o644); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mlis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stopRun := context.WithCancel(context.Background())
	d, err := extprocd.New(ctx, extprocd.Options{ConfigPath: path, Listener: lis, MetricsListener: mlis, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- d.Serve(ctx) }()
	defer func() {
		stopRun()
		if err := <-runErr; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := extprocv3.NewExternalProcessorClient(conn)
	metricsURL := "http://" + mlis.Addr().String() + "/metrics"

	const configs = 40
	// answerOf says which configuration gave an answer to a GET from origin c<n>: n if
	// decorated, -1 if not decorated, and an error if its headers come from different
	// configurations (a torn policy).
	answerOf := func(n int, got casetable.Response) (int, error) {
		acao := got.Values("access-control-allow-origin")
		if len(acao) == 0 {
			if len(got.Values("access-control-max-age")) > 0 || len(got.Values("access-control-expose-headers")) > 0 {
				return 0, fmt.Errorf("CORS headers without Allow-Origin: %q", got.Headers)
			}
			return -1, nil
		}
		origin := fmt.Sprintf("https://c%d.example", n)
		maxAge, expose := got.Values("access-control-max-age"), got.Values("access-control-expose-headers")
		if acao[0] != origin || len(maxAge) != 1 || maxAge[0] != strconv.Itoa(n) || len(expose) != 1 || expose[0] != fmt.Sprintf("x-c%d", n) {
			return 0, fmt.Errorf("torn answer for origin %s: Allow-Origin %q, Max-Age %q, Expose-Headers %q", origin, acao, maxAge, expose)
		}
		return n, nil
	}
	ask := func(ctx context.Context, n int) (int, error) {
		got, err := extprocExchange(ctx, client, actualRequest("GET", "/b/k", "origin", fmt.Sprintf("https://c%d.example", n)), nil)
		if err != nil {
			return 0, err
		}
		return answerOf(n, got)
	}
	testenv.Eventually(t, "configuration 0 live", func() bool { n, err := ask(t.Context(), 0); return err == nil && n == 0 })

	var (
		wg       sync.WaitGroup
		stop     = make(chan struct{})
		streams  atomic.Int64
		mu       sync.Mutex
		failures []string
	)
	for w := range 4 {
		wg.Go(func() {
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := ask(ctx, i%configs); err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
				}
				streams.Add(1)
			}
		})
	}

	// The storm: every configuration in turn, each followed by a bad file, alternately
	// written in place (a reader may see it half written) and renamed over the old one, each
	// write followed by a reload as SIGHUP asks for one (Daemon.Reload, at once; the file
	// watcher reloads too, once writes pause for its debounce).
	lastGood := 0
	for round := range 400 {
		var data []byte
		if round%2 == 0 {
			lastGood = 1 + (round/2)%(configs-1)
			data = stormConfig(lastGood)
		} else {
			data = stormBad[(round/2)%len(stormBad)]
		}
		if round%4 < 2 {
			err = os.WriteFile(path, data, 0o644)
		} else {
			tmp := filepath.Join(dir, fmt.Sprintf(".s3cors-%d.json", round))
			if err = os.WriteFile(tmp, data, 0o644); err == nil {
				err = os.Rename(tmp, path)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		d.Reload(ctx, "SIGHUP")
		time.Sleep(2 * time.Millisecond)
	}
	// End on a known good file, wait for it, then a bad one: the good one must stay.
	lastGood = configs - 1
	if err := os.WriteFile(path, stormConfig(lastGood), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the last good configuration live", func() bool { n, err := ask(t.Context(), lastGood); return err == nil && n == lastGood })
	refusedBefore := metricSample(t, metricsURL, `s3cors_config_reload_errors_total{reason="invalid"}`)
	if err := os.WriteFile(path, stormBad[0], 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the bad file refused", func() bool {
		return metricSample(t, metricsURL, `s3cors_config_reload_errors_total{reason="invalid"}`) > refusedBefore
	})
	close(stop)
	wg.Wait()

	for _, f := range failures {
		t.Error(f)
	}
	if n, err := ask(t.Context(), lastGood); err != nil || n != lastGood {
		t.Errorf("after a bad file, configuration %d answers (%v); want the last good one, %d, still live", n, err, lastGood)
	}
	sum := sha256.Sum256(stormConfig(lastGood))
	if h := "sha256:" + hex.EncodeToString(sum[:]); metricSample(t, metricsURL, `s3cors_config_info{hash="`+h+`",source="`+path+`"}`) != 1 {
		t.Errorf("s3cors_config_info does not name the last good configuration %s", h)
	}
	reloads := metricSample(t, metricsURL, "s3cors_config_reloads_total")
	refused := metricSample(t, metricsURL, `s3cors_config_reload_errors_total{reason="invalid"}`)
	t.Logf("%d streams during the storm; %v configurations swapped in, %v files refused", streams.Load(), reloads, refused)
	if reloads < 10 || refused < 10 {
		t.Errorf("only %v swaps and %v refusals: the storm did not exercise reloads under load", reloads, refused)
	}
}

var sampleLine = regexp.MustCompile(`(?m)^(\S+) (\S+)$`)

// metricSample scrapes one sample from a Prometheus text endpoint; 0 when absent.
func metricSample(t testing.TB, url, sample string) float64 {
	t.Helper()
	_, body := httpGet(t, url)
	for _, m := range sampleLine.FindAllStringSubmatch(string(body), -1) {
		if m[1] == sample {
			v, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				t.Fatalf("sample %s: %v", sample, err)
			}
			return v
		}
	}
	return 0
}
