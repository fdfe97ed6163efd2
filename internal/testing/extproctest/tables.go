package extproctest

import (
	"path/filepath"
	"testing"

	"github.com/s3cors/s3cors/internal/testing/casetable"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// Tables returns the case tables every ext_proc test runs: the shared ones (testdata/cases)
// and the ext_proc server's own (extproc/testdata/cases: response-header mutation in detail).
// Missing shared tables fail t under CI=true and are logged otherwise.
func Tables(t testing.TB) []casetable.Table {
	t.Helper()
	root := testenv.RepoRoot(t)
	shared := filepath.Join(root, "testdata", "cases")
	var all []casetable.Table
	if matches, _ := filepath.Glob(filepath.Join(shared, "*.json")); len(matches) == 0 {
		if testenv.InCI() {
			t.Fatalf("no shared case tables in %q", shared)
		}
		t.Logf("no shared case tables in %q yet; running extproc's own", shared)
	} else {
		ts, err := casetable.LoadDir(shared)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ts...)
	}
	own, err := casetable.LoadDir(filepath.Join(root, "extproc", "testdata", "cases"))
	if err != nil {
		t.Fatal(err)
	}
	return append(all, own...)
}
