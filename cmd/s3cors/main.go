// Command s3cors is the s3cors command line: a local gateway running the wasm filter
// (serve), the Envoy ext_proc server (extproc), the bucket CORS API pushed to Envoy over xDS
// (controlplane), configuration checks for CI (validate), the reasoning behind one request
// (explain), conversions between S3's CORS forms (convert), policy images for the filter
// (compile), deployment manifests (manifest), OCI images of the module (oci) and its version
// (version).
//
// Exit codes: 0 success, 1 failure (for validate: a configuration is invalid), 2 usage error
// (for validate also a file it cannot read: nothing was judged). main only maps SIGINT and
// SIGTERM to a context and exits with what the command returns, so every command is tested
// in-process.
//
// Where it sits: the top of the layering. It wires the packages below into processes
// (signals, listeners, reload) and nothing imports it; the work is in evaluator,
// internal/configfile, internal/gateway, internal/extprocd, internal/controlplane,
// internal/manifest, internal/ociwasm and internal/explain.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runContext(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// run runs the command line args (without the program name) and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	return runContext(context.Background(), args, stdout, stderr)
}

// runContext is run with a context whose cancellation stops long-running commands (serve,
// extproc) gracefully, as SIGINT and SIGTERM do in main.
func runContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	switch {
	case errors.As(err, &ee) && ee.err == nil:
		return ee.code // the command already reported
	case errors.As(err, &ee):
		_, _ = fmt.Fprintf(stderr, "s3cors: %v\n", ee.err)
		if ee.code == exitUsage {
			_, _ = fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
		return ee.code
	default:
		_, _ = fmt.Fprintf(stderr, "s3cors: %v\n", err)
		return exitFailure
	}
}

// exitError carries an exit code; a nil err means the message was already written.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageErrorf is a usage error: exit code 2 and a pointer to --help.
func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	var showVersion bool
	root := &cobra.Command{
		Use:   "s3cors",
		Short: "Amazon S3's exact bucket CORS behaviour for any S3-compatible store, at the proxy",
		Long: `s3cors gives any S3-compatible object store Amazon S3's exact bucket CORS behaviour,
enforced at the proxy (Envoy, Istio): the same preflight answers, headers and XML errors as S3,
byte for byte, from the bucket CORS configuration you already have.

Exit codes: 0 success, 1 failure (validate: invalid configuration), 2 usage error.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// With subcommands, cobra hands an unknown one to the root's Args check.
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown command %q", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if showVersion {
				// The version command's own output, so the two never differ.
				version, _, err := cmd.Find([]string{"version"})
				if err != nil {
					return err
				}
				return version.RunE(version, nil)
			}
			return cmd.Help()
		},
	}
	// Not cobra's Version field: its text is fixed when the command is built, and the
	// version command's hashes the embedded module, which every run would then pay for.
	root.Flags().BoolVar(&showVersion, "version", false, "print the version, as the version command does")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: err}
	})
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(
		newServeCmd(),
		newExtprocCmd(),
		newControlplaneCmd(),
		newValidateCmd(),
		newExplainCmd(),
		newConvertCmd(),
		newCompileCmd(),
		newManifestCmd(),
		newOCICmd(),
		newVersionCmd(),
	)
	return root
}

// exactArgs is cobra.ExactArgs with a usage error.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%s: want %s, got %d arguments", cmd.Name(), what, len(args))
		}
		return nil
	}
}

// oneOf checks a flag value against its allowed values.
func oneOf(flag, value string, allowed ...string) error {
	for _, a := range allowed {
		if value == a {
			return nil
		}
	}
	want := allowed[0]
	if n := len(allowed); n > 1 {
		want = strings.Join(allowed[:n-1], ", ") + " or " + allowed[n-1]
	}
	return usageErrorf("--%s %q: want %s", flag, value, want)
}
