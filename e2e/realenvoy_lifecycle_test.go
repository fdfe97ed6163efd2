package e2e_test

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/proto"

	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// lifecycleConfig is an s3cors configuration whose bucket "b" allows preflights from origin.
func lifecycleConfig(origin string) []byte {
	return []byte(fmt.Sprintf(`{"buckets": {"b": [{"AllowedOrigins": [%q], "AllowedMethods": ["PUT"]}]}}`, origin))
}

// lifecycleInvalid is a configuration s3cors refuses in on_configure (FETCH is no method).
var lifecycleInvalid = []byte(`{"buckets": {"b": [{"AllowedOrigins": ["https://x.example"], "AllowedMethods": ["FETCH"]}]}}`)

// preflight sends a preflight for bucket b from origin to addr and returns the status, or an
// error.
func preflight(client *http.Client, addr, origin string) (int, error) {
	req, err := http.NewRequest(http.MethodOptions, "http://"+addr+"/b/k", nil)
	if err != nil {
		return 0, err
	}
	req.Host = "s3.internal"
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", "PUT")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// TestRealEnvoyConfigRollout pushes configurations over LDS (a watched file, replaced by an
// atomic rename) to a running Envoy while four clients send preflights without pause: first
// one s3cors refuses, which Envoy rejects while the old listener keeps serving, then a valid
// one with new rules, which every client sees within a bounded time. Every response is the old
// rules' answer or the new rules'; none fails or hangs.
func TestRealEnvoyConfigRollout(t *testing.T) {
	module := testenv.Module(t)
	store := startRealEnvoyStore(t, nil)
	const oldOrigin, newOrigin = "https://old.example", "https://new.example"
	for _, e := range testenv.Envoys(t) {
		t.Run(e.Version, func(t *testing.T) {
			b := wasmBootstrap(t, lifecycleConfig(oldOrigin), module, store.addr)
			port := freePort(t)
			b.StaticResources.Listeners[0].Address = realEnvoyAddress("127.0.0.1", port)
			tmpl := proto.Clone(b.StaticResources.Listeners[0]).(*listenerv3.Listener)
			push := toLDS(t, b)
			p := launchEnvoy(t, e.Path, marshalBootstrap(t, b), 2)
			p.waitLive(t)
			addr := fmt.Sprintf("127.0.0.1:%d", port)

			// Four clients, each with its own keep-alive connection; a preflight from oldOrigin is
			// allowed only by the old rules, one from newOrigin only by the new.
			var (
				mu       sync.Mutex
				answers  = map[string]int{} // "old" or "new" answers, and "failed"
				lastOld  time.Time
				firstNew time.Time
				errs     []string
				stop     = make(chan struct{})
				wg       sync.WaitGroup
			)
			for g := 0; g < 4; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
					defer client.CloseIdleConnections()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						origin := oldOrigin
						if i%2 == 1 {
							origin = newOrigin
						}
						st, err := preflight(client, addr, origin)
						now := time.Now()
						mu.Lock()
						switch {
						case err != nil || (st != 200 && st != 403):
							answers["failed"]++
							if len(errs) < 10 {
								errs = append(errs, fmt.Sprintf("%s: %d %v", origin, st, err))
							}
						case (origin == oldOrigin) == (st == 200):
							answers["old"]++
							lastOld = now
						default:
							answers["new"]++
							if firstNew.IsZero() {
								firstNew = now
							}
						}
						mu.Unlock()
					}
				}()
			}
			snapshot := func() (map[string]int, time.Time, time.Time) {
				mu.Lock()
				defer mu.Unlock()
				return maps.Clone(answers), lastOld, firstNew
			}
			// waitStat polls a counter until it reaches want (30 s at most).
			waitStat := func(name string, want int64) {
				t.Helper()
				deadline := time.Now().Add(30 * time.Second)
				for p.stats(t)[name] < want {
					if time.Now().After(deadline) {
						t.Fatalf("%s = %d after 30 s, want %d", name, p.stats(t)[name], want)
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
			defer func() {
				select {
				case <-stop:
				default:
					close(stop)
				}
				wg.Wait()
			}()

			time.Sleep(time.Second)
			before := p.stats(t)
			push(t, withPluginConfig(t, tmpl, lifecycleInvalid))
			waitStat("listener_manager.lds.update_rejected", before["listener_manager.lds.update_rejected"]+1)
			time.Sleep(time.Second)
			afterInvalid, _, _ := snapshot()
			rejected := p.stats(t)
			if afterInvalid["new"] != 0 || afterInvalid["old"] == 0 {
				t.Errorf("answers before and after the refused push: %v, want only the old rules'", afterInvalid)
			}
			for name, delta := range map[string]int64{
				"listener_manager.lds.update_rejected":    1,
				"listener_manager.lds.update_success":     0,
				"listener_manager.listener_modified":      0,
				"listener_manager.total_listeners_active": 0,
				"wasmcustom.s3cors.config.rejected":       1,
			} {
				if got := rejected[name] - before[name]; got != delta {
					t.Errorf("refused push: %s moved by %d, want %d", name, got, delta)
				}
			}

			// The alert docs/deploy.md gives reads this series.
			if prom := string(p.adminGet(t, "/stats/prometheus")); !promHas(prom, "envoy_listener_manager_lds_update_rejected") {
				t.Errorf("/stats/prometheus has no envoy_listener_manager_lds_update_rejected")
			}

			pushed := time.Now()
			push(t, withPluginConfig(t, tmpl, lifecycleConfig(newOrigin)))
			waitStat("listener_manager.lds.update_success", rejected["listener_manager.lds.update_success"]+1)
			// The new rules apply once the last old answer is two seconds in the past.
			deadline := pushed.Add(time.Minute)
			for {
				_, last, first := snapshot()
				if !first.IsZero() && time.Since(last) > 2*time.Second {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("old rules still answering a minute after the push")
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			close(stop)
			wg.Wait()
			final, last, first := snapshot()
			t.Logf("answers: %v; first new answer %v after the push, last old %v after", final,
				first.Sub(pushed).Round(time.Millisecond), last.Sub(pushed).Round(time.Millisecond))
			if final["failed"] != 0 {
				t.Errorf("%d requests failed: %v", final["failed"], errs)
			}
			if final["new"] == 0 {
				t.Errorf("no answer by the new rules")
			}
			updated := p.stats(t)
			// The new configuration's canary VM, the main thread's and the two workers'.
			if got := updated["wasmcustom.s3cors.config.accepted"] - rejected["wasmcustom.s3cors.config.accepted"]; got != 4 {
				t.Errorf("config.accepted moved by %d with the new configuration, want 4", got)
			}
			for _, name := range []string{"listener_manager.listener_in_place_updated", "listener_manager.listener_modified", "listener_manager.total_filter_chains_draining"} {
				t.Logf("%s: %d", name, updated[name])
			}
		})
	}
}

// TestRealEnvoyRefusedAtStartup: a bootstrap whose plugin configuration s3cors refuses in
// on_configure: Envoy does not start (exit status 1, before its admin interface is ready),
// and its log names the problem and says why it stopped.
func TestRealEnvoyRefusedAtStartup(t *testing.T) {
	module := testenv.Module(t)
	for _, e := range testenv.Envoys(t) {
		t.Run(e.Version, func(t *testing.T) {
			b := wasmBootstrap(t, lifecycleInvalid, module, "127.0.0.1:9")
			p := launchEnvoy(t, e.Path, marshalBootstrap(t, b), 2)
			if !p.waitExit() {
				t.Fatalf("envoy still running two minutes after a refused configuration")
			}
			var exit *exec.ExitError
			if !errors.As(p.exitErr, &exit) || exit.ExitCode() != 1 {
				t.Errorf("envoy exited with %v, want exit status 1", p.exitErr)
			}
			log := p.log()
			for _, want := range []string{
				"s3cors: plugin configuration rejected; the filter refuses to start: 1 problem",
				"Unsupported method is FETCH",
				"Plugin configured to fail closed failed to load",
				"error `Unable to create Wasm plugin s3cors` initializing config",
			} {
				if !strings.Contains(log, want) {
					t.Errorf("envoy log lacks %q", want)
				}
			}
		})
	}
}
