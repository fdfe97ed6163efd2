package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var pythonMu sync.Mutex

// Python returns the interpreter of build/pyvenv, a virtual environment with the given PyPI
// packages (pip names, e.g. "boto3", "awscli") and modules importable (module names, e.g.
// "boto3"), creating it and installing with pip first when an import fails. Without
// python3 or the registry the test is skipped, except under CI=true, where it fails.
func Python(t testing.TB, packages, modules []string) string {
	t.Helper()
	pythonMu.Lock()
	defer pythonMu.Unlock()
	venv := filepath.Join(RepoRoot(t), "build", "pyvenv")
	py := filepath.Join(venv, "bin", "python")
	imports := "import " + strings.Join(modules, ", ")
	if exec.Command(py, "-c", imports).Run() == nil {
		return py
	}
	missing := func(format string, args ...any) {
		t.Helper()
		if InCI() {
			t.Fatalf("testenv: "+format, args...)
		}
		t.Skipf("testenv: "+format+" (a failure under CI=true)", args...)
	}
	if _, err := os.Stat(py); err != nil {
		if out, err := exec.Command("python3", "-m", "venv", venv).CombinedOutput(); err != nil {
			missing("python3 -m venv %s: %v\n%s", venv, err, out)
		}
	}
	args := append([]string{"-m", "pip", "install", "--quiet"}, packages...)
	if out, err := exec.Command(py, args...).CombinedOutput(); err != nil {
		missing("pip install %s: %v\n%s", strings.Join(packages, " "), err, out)
	}
	if out, err := exec.Command(py, "-c", imports).CombinedOutput(); err != nil {
		t.Fatalf("testenv: %s after pip install: %v\n%s", imports, err, out)
	}
	return py
}
