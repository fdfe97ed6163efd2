package main

import (
	"fmt"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/s3cors/s3cors/internal/ociwasm"
)

func newOCICmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "oci",
		Short: "Package the wasm module as an OCI image Istio can pull (layout or push)",
		Long: `The oci commands package s3cors.wasm as the single-layer "compat" Wasm OCI image that Istio's
WasmPlugin and Envoy Gateway pull: one tar+gzip layer holding plugin.wasm. The image is
reproducible: the same module always gives the same digest.

The module is the one embedded in this binary, or --wasm.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("oci: unknown command %q (want layout or push)", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	var wasm string
	cmd.PersistentFlags().StringVar(&wasm, "wasm", "", "s3cors.wasm to package instead of the embedded one")
	image := func() (v1.Image, error) {
		module, err := readModule(wasm)
		if err != nil {
			return nil, err
		}
		return ociwasm.Image(module)
	}

	var out string
	layoutCmd := &cobra.Command{
		Use:     "layout --out DIR",
		Short:   "Write the image as an OCI image layout directory",
		Example: "  s3cors oci layout --wasm build/s3cors.wasm --out build/oci",
		Args:    exactArgs(0, "no arguments (flags only)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageErrorf("oci layout: --out is required")
			}
			img, err := image()
			if err != nil {
				return err
			}
			if err := ociwasm.WriteLayout(out, img); err != nil {
				return err
			}
			d, err := img.Digest()
			if err != nil {
				return fmt.Errorf("oci: %w", err)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "wrote OCI image layout %s\nmanifest digest %s (a WasmPlugin's sha256: %s)\n", out, d, d.Hex)
			return err
		},
	}
	layoutCmd.Flags().StringVar(&out, "out", "", "directory to write (replaced; must be empty or an OCI layout)")

	var insecure bool
	pushCmd := &cobra.Command{
		Use:   "push REFERENCE",
		Short: "Push the image to a registry",
		Long: `Push uploads the image to REFERENCE (registry/repository:tag) with the credentials of the docker
configuration (~/.docker/config.json, DOCKER_CONFIG) and prints the digest-pinned reference,
the WasmPlugin url and its sha256.`,
		Example: "  s3cors oci push ghcr.io/acme/s3cors-wasm:v0.1.0",
		Args:    exactArgs(1, "one REFERENCE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			img, err := image()
			if err != nil {
				return err
			}
			p, err := ociwasm.Push(cmd.Context(), img, args[0], ociwasm.PushOptions{Insecure: insecure})
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "pushed %s\nWasmPlugin url:    %s\nWasmPlugin sha256: %s\n", p.Reference, p.URL, p.SHA256)
			return err
		},
	}
	pushCmd.Flags().BoolVar(&insecure, "insecure", false, "allow plain HTTP and unverified TLS to the registry")

	cmd.AddCommand(layoutCmd, pushCmd)
	return cmd
}

// readModule reads --wasm, or the embedded module when path is empty.
func readModule(path string) ([]byte, error) {
	if path == "" {
		return embeddedModule()
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--wasm: %w", err)
	}
	return b, nil
}
