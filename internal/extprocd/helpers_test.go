package extprocd

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.uber.org/goleak"

	"github.com/s3cors/s3cors/extproc"
	"github.com/s3cors/s3cors/extproc/extproctest"
	"github.com/s3cors/s3cors/internal/casetable"
	"github.com/s3cors/s3cors/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// noLeaks fails t if goroutines started during the test outlive it (after its cleanups).
func noLeaks(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// tables returns the shared case tables (testdata/cases) and extproc's own
// (extproc/testdata/cases).
func tables(t testing.TB) []casetable.Table {
	t.Helper()
	var all []casetable.Table
	for _, dir := range []string{filepath.Join(testenv.RepoRoot(t), "testdata", "cases"), filepath.Join(testenv.RepoRoot(t), "extproc", "testdata", "cases")} {
		ts, err := casetable.LoadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) == 0 {
			t.Fatalf("no case tables in %q", dir)
		}
		all = append(all, ts...)
	}
	return all
}

func tablePolicy(t testing.TB, tb casetable.Table) *extproc.LoadedPolicy {
	t.Helper()
	lp, err := extproc.LoadConfig(tb.File+".json", tb.Config)
	if err != nil {
		t.Fatalf("%s: %v", tb.File, err)
	}
	return lp
}

func respHeaders(kv ...string) *extprocv3.ProcessingRequest {
	var hs []casetable.Header
	for i := 0; i+1 < len(kv); i += 2 {
		hs = append(hs, casetable.Header{kv[i], kv[i+1]})
	}
	return extproctest.ResponseHeaders(hs)
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// syncBuffer is a log sink tests can read while the daemon writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func bufferLogger(level slog.Level) (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: level})), buf
}
