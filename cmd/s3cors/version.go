package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/s3cors/s3cors/evaluator"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of s3cors and of the embedded wasm module",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			version, revision, dirty := "(devel)", "", false
			if bi, ok := debug.ReadBuildInfo(); ok {
				if bi.Main.Version != "" {
					version = bi.Main.Version
				}
				for _, s := range bi.Settings {
					switch s.Key {
					case "vcs.revision":
						revision = s.Value
					case "vcs.modified":
						dirty = s.Value == "true"
					}
				}
			}
			var out strings.Builder
			fmt.Fprintf(&out, "s3cors %s\n", version)
			if revision != "" {
				if dirty {
					revision += " (modified)"
				}
				fmt.Fprintf(&out, "revision %s\n", revision)
			}
			fmt.Fprintf(&out, "go %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
			fmt.Fprintf(&out, "policy image format %d (s3cors compile)\n", evaluator.ImageVersion)
			if mod, err := embeddedModule(); err == nil {
				sum := sha256.Sum256(mod)
				fmt.Fprintf(&out, "embedded s3cors.wasm sha256:%s (%d bytes)\n", hex.EncodeToString(sum[:]), len(mod))
			} else {
				out.WriteString("embedded s3cors.wasm: none (built without `make build`)\n")
			}
			_, err := io.WriteString(cmd.OutOrStdout(), out.String())
			return err
		},
	}
}
