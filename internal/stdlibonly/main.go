// Command stdlibonly fails when a package imports anything outside the standard library
// (transitively, test files excluded). `make check` runs it on ./evaluator, which must stay
// dependency-free so it builds anywhere, wasip1 included.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: stdlibonly PACKAGE...")
		os.Exit(2)
	}
	args := append([]string{"list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}"}, os.Args[1:]...)
	out, err := exec.Command("go", args...).Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "stdlibonly: go list:", err)
		os.Exit(1)
	}
	var bad []string
	for _, line := range strings.Fields(string(out)) {
		if !strings.HasPrefix(line, "github.com/s3cors/s3cors/evaluator") {
			bad = append(bad, line)
		}
	}
	if len(bad) > 0 {
		fmt.Fprintf(os.Stderr, "stdlibonly: %s imports non-standard packages: %s\n", strings.Join(os.Args[1:], " "), strings.Join(bad, ", "))
		os.Exit(1)
	}
	fmt.Println("stdlibonly: ok")
}
