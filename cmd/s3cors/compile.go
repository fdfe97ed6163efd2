package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/s3cors/s3cors/evaluator"
)

func newCompileCmd() *cobra.Command {
	var output string
	var wrap bool
	cmd := &cobra.Command{
		Use:   "compile CONFIG -o IMAGE",
		Short: "Compile a configuration into a policy image that proxies load in milliseconds",
		Long: `Compile validates an s3cors configuration (JSON or YAML, as validate reads it) and writes its
policy image: one compact, versioned, checksummed block that the filter uses in place, so
that each Envoy worker VM loads it in milliseconds instead of parsing the whole document.
Buckets with equal rules share one copy of them.

The filter takes the image as its plugin configuration, either as it is (an Envoy
google.protobuf.BytesValue) or, with --wrap, as the JSON document
{"s3corsImage": "<base64>"} that Istio's WasmPlugin pluginConfig can carry.

An image is read only by an s3cors whose image format version is the same (s3cors version
prints it); compile again after an upgrade that changes it.`,
		Example: `  s3cors compile config.yaml -o policy.img
  s3cors compile config.json --wrap -o policy.json`,
		Args: exactArgs(1, "one CONFIG"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "" {
				return usageErrorf("compile: -o IMAGE is required (- for standard output)")
			}
			pol, doc, err := loadPolicy(args[0])
			if err != nil {
				return &exitError{code: exitFailure, err: fmt.Errorf("compile: %w", err)}
			}
			img, err := pol.Image()
			if err != nil {
				return fmt.Errorf("compile: %w", err)
			}
			// The image is loaded back before it is written: what the proxy will refuse is
			// never written.
			loaded, err := evaluator.LoadImage(img)
			if err != nil {
				return fmt.Errorf("compile: the image does not load back: %w", err)
			}
			st, _ := loaded.ImageStats()
			out := img
			if wrap {
				out = evaluator.WrapImage(img)
			}
			report := cmd.OutOrStdout()
			if output == "-" {
				if _, err := cmd.OutOrStdout().Write(out); err != nil {
					return fmt.Errorf("compile: writing the image: %w", err)
				}
				report = cmd.ErrOrStderr()
			} else if err := os.WriteFile(output, out, 0o644); err != nil {
				return fmt.Errorf("compile: %w", err)
			}
			what := "image"
			if wrap {
				what = fmt.Sprintf("wrapped image (%d bytes of JSON)", len(out))
			}
			_, _ = fmt.Fprintf(report, "%s: %s, format version %d: %d bytes, %s, %s, crc32c:%08x (configuration: %d bytes of JSON)\n",
				output, what, evaluator.ImageVersion, st.Bytes, plural(st.Buckets, "bucket"), plural(st.RuleSets, "distinct rule set"), st.Checksum, len(doc))
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "the image file to write (- for standard output)")
	cmd.Flags().BoolVar(&wrap, "wrap", false, `write the JSON wrapper {"s3corsImage": "<base64>"} (Istio's pluginConfig) instead of the raw image`)
	return cmd
}
