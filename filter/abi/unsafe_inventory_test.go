package abi

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestUnsafeInventory: every non-test Go file of the repository that imports unsafe is listed
// in the package documentation's "Where s3cors uses unsafe" (doc.go), and every file listed
// there exists and imports it, so the inventory stays the one complete place.
func TestUnsafeInventory(t *testing.T) {
	root := filepath.Join("..", "..")
	listedFiles, listedDirs := unsafeInventory(t)
	found := map[string]bool{}
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if n := e.Name(); p != root && (strings.HasPrefix(n, ".") || n == "build" || n == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if !importsUnsafe(t, p) {
			return nil
		}
		found[rel] = true
		listed := listedFiles[rel]
		for dir := range listedDirs {
			listed = listed || strings.HasPrefix(rel, dir)
		}
		if !listed {
			t.Errorf("%s imports unsafe but is not in doc.go's inventory (Where s3cors uses unsafe)", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for f := range listedFiles {
		if !found[f] {
			t.Errorf("doc.go's inventory lists %s, which does not import unsafe", f)
		}
	}
	for dir := range listedDirs {
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(dir))); err != nil {
			t.Errorf("doc.go's inventory lists %s: %v", dir, err)
		}
	}
	if len(listedFiles) < 10 {
		t.Fatalf("read %d files from the inventory, want the whole table: %v", len(listedFiles), listedFiles)
	}
}

// unsafeInventory reads the table's rows from doc.go: the lines indented by one tab, whose
// tokens are paths ("dir/file.go"), files of the same directory ("file.go"), directories
// ("dir/") and the names of what in them uses unsafe.
func unsafeInventory(t *testing.T) (files, dirs map[string]bool) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(src), "# Where s3cors uses unsafe")
	if !ok {
		t.Fatal(`doc.go has no "# Where s3cors uses unsafe" section`)
	}
	files, dirs = map[string]bool{}, map[string]bool{}
	for _, line := range strings.Split(table, "\n") {
		row, ok := strings.CutPrefix(line, "//\t")
		if !ok || strings.HasPrefix(row, " ") {
			continue
		}
		dir := ""
		for _, tok := range strings.FieldsFunc(row, func(r rune) bool { return r == ' ' || r == ',' || r == ';' }) {
			switch {
			case strings.HasSuffix(tok, "/"):
				dirs[tok] = true
			case strings.HasSuffix(tok, ".go") && strings.Contains(tok, "/"):
				dir = path.Dir(tok)
				files[tok] = true
			case strings.HasSuffix(tok, ".go"):
				files[dir+"/"+tok] = true
			}
		}
	}
	return files, dirs
}

func importsUnsafe(t *testing.T, file string) bool {
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ImportsOnly)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == "unsafe" {
			return true
		}
	}
	return false
}
