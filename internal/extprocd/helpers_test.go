package extprocd

import (
	"log/slog"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.uber.org/goleak"

	"github.com/s3cors/s3cors/extproc"
	"github.com/s3cors/s3cors/internal/testing/casetable"
	"github.com/s3cors/s3cors/internal/testing/extproctest"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// noLeaks fails t if goroutines started during the test outlive it (after its cleanups).
func noLeaks(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// tables returns the case tables (extproctest.Tables).
func tables(t testing.TB) []casetable.Table { return extproctest.Tables(t) }

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

// bufferLogger is testenv's.
func bufferLogger(level slog.Level) (*slog.Logger, *testenv.SyncBuffer) {
	return testenv.BufferLogger(level)
}
