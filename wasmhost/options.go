package wasmhost

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
)

// Profile names the Envoy release line whose proxy-wasm host (proxy-wasm-cpp-host) this host
// reproduces. The two lines differ in exactly the ways a standard-Go module can notice: the
// WASI function set, poll_oneoff's answer, the restricted-callback allow-lists and the start
// exports that are called.
type Profile string

const (
	// Envoy133 is Envoy 1.33 to 1.38 (cpp-host at the PR #427 era): 18 WASI functions,
	// poll_oneoff answers ENOSYS without writing nevents, and neither _initialize nor the
	// allocator may call poll_oneoff. It is the default: most deployed Envoys and Istio 1.25 to
	// 1.30 are here, and a module that works here works on later releases too.
	Envoy133 Profile = "envoy-1.33"
	// Envoy139 is Envoy 1.39 and later (cpp-host PR #533, pulled in by Envoy PR #45756): 46
	// WASI functions, poll_oneoff succeeds with zero events, poll_oneoff is allowed during
	// _initialize and in the allocator, and __main_void is called after _initialize.
	Envoy139 Profile = "envoy-1.39"
)

// ParseProfile parses a profile name. It accepts the two profile names and, as aliases, any
// Envoy minor release from 1.33 on ("envoy-1.36" is Envoy133, "envoy-1.41" is Envoy139); the
// empty string is an error, not the default.
func ParseProfile(s string) (Profile, error) {
	switch p := Profile(s); p {
	case Envoy133, Envoy139:
		return p, nil
	}
	if rest, ok := strings.CutPrefix(s, "envoy-1."); ok {
		var minor int
		if _, err := fmt.Sscanf(rest, "%d", &minor); err == nil && fmt.Sprint(minor) == rest {
			switch {
			case minor >= 39:
				return Envoy139, nil
			case minor >= 33:
				return Envoy133, nil
			default:
				return "", fmt.Errorf("wasmhost: profile %q: Envoy 1.32 and older cannot load a standard-Go (wasip1) module (missing import wasi_snapshot_preview1.sched_yield); use %q or later", s, Envoy133)
			}
		}
	}
	return "", fmt.Errorf("wasmhost: unknown profile %q: want %q (Envoy 1.33-1.38) or %q (Envoy 1.39 and later)", s, Envoy133, Envoy139)
}

// String returns the profile's name.
func (p Profile) String() string { return string(p) }

// profileSpec is everything that differs between profiles.
type profileSpec struct {
	name Profile
	// wasi is the WASI function set, registered under both WASI module names.
	wasi []string
	// pollOneoffOK: poll_oneoff writes nevents=0 and succeeds (cpp-host #533) instead of
	// returning ENOSYS without touching memory.
	pollOneoffOK bool
	// startAllowed and mallocAllowed are the restricted-callback allow-lists (fully qualified
	// "module.name") for the start functions and for the allocator.
	startAllowed  map[string]bool
	mallocAllowed map[string]bool
	// mainVoid: __main_void is looked up and called after _initialize when main is absent.
	mainVoid bool
}

var wasi133 = []string{
	"fd_write", "fd_read", "fd_seek", "fd_close", "fd_fdstat_get", "fd_fdstat_set_flags",
	"environ_get", "environ_sizes_get", "args_get", "args_sizes_get", "clock_time_get",
	"random_get", "sched_yield", "poll_oneoff", "proc_exit", "path_open", "fd_prestat_get",
	"fd_prestat_dir_name",
}

var wasi139 = append(append([]string(nil), wasi133...),
	"fd_fdstat_set_rights", "clock_res_get", "fd_advise", "fd_allocate", "fd_datasync",
	"fd_filestat_set_size", "fd_filestat_set_times", "fd_pread", "fd_pwrite", "fd_readdir",
	"fd_renumber", "fd_sync", "fd_tell", "path_create_directory", "path_filestat_set_times",
	"path_link", "path_readlink", "path_remove_directory", "path_rename", "path_symlink",
	"path_unlink_file", "sock_accept", "sock_recv", "sock_send", "sock_shutdown",
	"path_filestat_get", "fd_filestat_get",
)

// allowList qualifies WASI names under both WASI modules and keeps env.* names as given.
func allowList(env []string, wasi []string) map[string]bool {
	m := make(map[string]bool, len(env)+2*len(wasi))
	for _, n := range env {
		m["env."+n] = true
	}
	for _, n := range wasi {
		for _, mod := range wasiModules {
			m[mod+"."+n] = true
		}
	}
	return m
}

var profiles = map[Profile]*profileSpec{
	// cpp-host beb8a4e (the pin of the Envoy 1.38 era), src/wasm.cc startVm and
	// include/proxy-wasm/wasm.h allocMemory.
	Envoy133: {
		name: Envoy133,
		wasi: wasi133,
		startAllowed: allowList(
			[]string{"emscripten_notify_memory_growth", "proxy_log"},
			[]string{"fd_write", "args_sizes_get", "args_get", "environ_sizes_get", "environ_get",
				"fd_prestat_get", "fd_prestat_dir_name", "clock_time_get", "random_get",
				"fd_fdstat_get", "fd_fdstat_set_flags"}),
		mallocAllowed: allowList([]string{"proxy_log"}, []string{"fd_write", "clock_time_get"}),
	},
	// cpp-host 09e5f8d (Envoy PR #45756).
	Envoy139: {
		name:         Envoy139,
		wasi:         wasi139,
		pollOneoffOK: true,
		mainVoid:     true,
		startAllowed: allowList(
			[]string{"emscripten_notify_memory_growth", "proxy_log"},
			[]string{"fd_write", "args_sizes_get", "args_get", "environ_sizes_get", "environ_get",
				"clock_time_get", "clock_res_get", "random_get", "poll_oneoff", "fd_fdstat_get",
				"fd_fdstat_set_flags", "fd_advise", "fd_allocate", "fd_datasync",
				"fd_fdstat_set_rights", "fd_filestat_get", "fd_filestat_set_size",
				"fd_filestat_set_times", "fd_pread", "fd_prestat_dir_name", "fd_prestat_get",
				"fd_pwrite", "fd_readdir", "fd_renumber", "fd_sync", "fd_tell",
				"path_create_directory", "path_filestat_get", "path_filestat_set_times",
				"path_link", "path_readlink", "path_remove_directory", "path_rename",
				"path_symlink", "path_unlink_file", "sock_accept", "sock_recv", "sock_send",
				"sock_shutdown"}),
		mallocAllowed: allowList([]string{"proxy_log"},
			[]string{"fd_write", "clock_time_get", "poll_oneoff"}),
	},
}

// FailurePolicy is what happens to traffic once the plugin's VM has failed (a trap at run time)
// or could not be created, as Envoy's PluginConfig.failure_policy.
type FailurePolicy int

const (
	// FailClosed answers every stream of a failed VM with a 503 local reply (details
	// "wasm_fail_stream", gRPC UNAVAILABLE) and skips its response callbacks. It is the default,
	// as Envoy's for an unspecified failure_policy.
	FailClosed FailurePolicy = iota
	// FailOpen is failure_policy FAIL_OPEN (what Istio 1.25 and later generate for
	// failStrategy FAIL_OPEN): streams created after the failure skip the filter; the streams
	// the VM was serving when it failed (the one that trapped included) still get the 503.
	FailOpen
	// FailReload creates a new VM (new _initialize and root sequence) for the next stream after
	// a runtime failure; the stream that saw the failure is failed closed.
	FailReload
	// FailOpenLegacy is the deprecated fail_open: true (Istio before 1.25): like FailOpen, and
	// the streams in flight, the one that trapped included, continue without the filter too.
	FailOpenLegacy
)

// String returns the policy's Envoy name.
func (p FailurePolicy) String() string {
	switch p {
	case FailClosed:
		return "FAIL_CLOSED"
	case FailOpen:
		return "FAIL_OPEN"
	case FailReload:
		return "FAIL_RELOAD"
	case FailOpenLegacy:
		return "fail_open"
	}
	return fmt.Sprintf("FailurePolicy(%d)", int(p))
}

// DefaultReloadBackoff is Envoy's reload backoff base interval when reload_config sets none.
const DefaultReloadBackoff = time.Second

// NoReloadBackoff as Options.ReloadBackoff replaces a failed VM for the very next stream.
const NoReloadBackoff time.Duration = -1

// LogLevel is an Envoy log level. The zero value, LevelDefault, means Envoy's default, info.
type LogLevel int

const (
	LevelDefault LogLevel = iota
	LevelTrace
	LevelDebug
	LevelInfo
	LevelWarn
	LevelError
	LevelCritical
	LevelOff
)

var levelNames = [...]string{"default", "trace", "debug", "info", "warning", "error", "critical", "off"}

// String returns Envoy's name of the level ("trace" ... "critical", "off").
func (l LogLevel) String() string {
	if l >= 0 && int(l) < len(levelNames) {
		return levelNames[l]
	}
	return fmt.Sprintf("LogLevel(%d)", int(l))
}

// ParseLogLevel parses Envoy's level names: trace, debug, info, warning (or warn), error,
// critical, off.
func ParseLogLevel(s string) (LogLevel, error) {
	switch strings.ToLower(s) {
	case "trace":
		return LevelTrace, nil
	case "debug":
		return LevelDebug, nil
	case "info":
		return LevelInfo, nil
	case "warning", "warn":
		return LevelWarn, nil
	case "error":
		return LevelError, nil
	case "critical":
		return LevelCritical, nil
	case "off":
		return LevelOff, nil
	}
	return LevelDefault, fmt.Errorf("wasmhost: unknown log level %q: want trace, debug, info, warning, error, critical or off", s)
}

// envoy is the level's number in Proxy-Wasm and spdlog (trace 0 ... critical 5, off 6).
func (l LogLevel) envoy() uint32 {
	if l == LevelDefault {
		return uint32(LevelInfo) - 1
	}
	return uint32(l) - 1
}

func (l LogLevel) slog() slog.Level {
	switch l {
	case LevelTrace:
		return slog.LevelDebug - 4
	case LevelDebug:
		return slog.LevelDebug
	case LevelWarn:
		return slog.LevelWarn
	case LevelError:
		return slog.LevelError
	case LevelCritical:
		return slog.LevelError + 4
	}
	return slog.LevelInfo
}

// Options configures a Host. The zero value of every field but Module is a sensible default.
type Options struct {
	// Module is the .wasm module's bytes. Required.
	Module []byte
	// Profile is the Envoy release line to reproduce. Default Envoy133.
	Profile Profile
	// PluginConfig is the plugin configuration (PluginConfig.configuration): what
	// proxy_get_buffer_bytes(PluginConfiguration) returns inside on_configure. Default empty.
	PluginConfig []byte
	// VMConfig is the VM configuration (vm_config.configuration), readable at any time.
	// Default empty.
	VMConfig []byte
	// Env is vm_config.environment_variables (key_values), served by environ_get; nothing
	// from the process environment leaks in. Default none.
	Env map[string]string
	// Workers is the number of worker VMs (Envoy's --concurrency); streams are spread over
	// them round-robin. Default 1.
	Workers int
	// FailurePolicy applies once a VM has failed. Default FailClosed.
	FailurePolicy FailurePolicy
	// ReloadBackoff is Envoy's reload_config.backoff.base_interval under FailReload: a failed
	// worker VM is replaced by the first stream that finds at least a wait drawn from
	// [ReloadBackoff, 1.5×ReloadBackoff) (Envoy's JitteredLowerBoundBackOffStrategy, drawn
	// again at each stream) gone since that worker's VM was last loaded, created or reloaded;
	// the streams before fail closed. Default 1 s, Envoy's. NoReloadBackoff replaces the VM
	// for the very next stream, which keeps tests deterministic.
	ReloadBackoff time.Duration
	// Logger receives guest and host log lines at or above LogLevel. Nil discards them; they
	// are recorded for Logs either way.
	Logger *slog.Logger
	// LogLevel is Envoy's wasm logger level: proxy_get_log_level answers it and guest lines
	// below it are dropped (proxy_log still answers Ok), as Envoy does. Default info.
	LogLevel LogLevel
	// LogCapacity bounds the ring of recorded log lines Logs returns. Default 4096.
	LogCapacity int
	// BufferLimit is the per-stream body buffer limit (Envoy's per_connection_buffer_limit_bytes):
	// a filter that buffers more request body gets Envoy's 413 local reply, more response body
	// a 500. Default 1 MiB.
	BufferLimit int
	// StreamIdleTimeout is how long Handler waits for a paused stream to be resumed (by
	// proxy_continue_stream from a tick) before answering 408 "stream timeout" as Envoy's
	// stream_idle_timeout does. Default 5 minutes, Envoy's default; tests set it lower.
	StreamIdleTimeout time.Duration
	// CompilationCache is shared by hosts that compile the same module (tests, reloads of the
	// gateway). Default: a cache private to the Host.
	CompilationCache wazero.CompilationCache
	// EnvoyHeaders adds the response headers Envoy's router and connection manager add:
	// x-envoy-upstream-service-time to upstream's response before the plugin sees it, and
	// "server: envoy" to every response the client gets. Default off: upstream's response
	// reaches the client without them.
	EnvoyHeaders bool
	// PluginName, RootID and VMID are the plugin's name, root_id and vm_id, as properties
	// plugin_name, plugin_root_id and plugin_vm_id report them. Default "s3cors", "" and "".
	PluginName string
	RootID     string
	VMID       string
}

// resolved holds Options after defaults and validation.
type resolved struct {
	Options
	profile *profileSpec
}

func (o Options) resolve() (*resolved, error) {
	r := &resolved{Options: o}
	if len(o.Module) == 0 {
		return nil, fmt.Errorf("wasmhost: Options.Module is empty")
	}
	if r.Profile == "" {
		r.Profile = Envoy133
	}
	p, ok := profiles[r.Profile]
	if !ok {
		return nil, fmt.Errorf("wasmhost: Options.Profile %q: want %q or %q", r.Profile, Envoy133, Envoy139)
	}
	r.profile = p
	switch {
	case o.Workers < 0:
		return nil, fmt.Errorf("wasmhost: Options.Workers %d: must be at least 1", o.Workers)
	case o.Workers == 0:
		r.Workers = 1
	}
	if o.FailurePolicy < FailClosed || o.FailurePolicy > FailOpenLegacy {
		return nil, fmt.Errorf("wasmhost: Options.FailurePolicy %d: want FailClosed, FailOpen, FailReload or FailOpenLegacy", int(o.FailurePolicy))
	}
	switch {
	case o.ReloadBackoff < 0 && o.ReloadBackoff != NoReloadBackoff:
		return nil, fmt.Errorf("wasmhost: Options.ReloadBackoff %v: must not be negative (NoReloadBackoff: none)", o.ReloadBackoff)
	case o.ReloadBackoff == 0:
		r.ReloadBackoff = DefaultReloadBackoff
	}
	if o.LogLevel < LevelDefault || o.LogLevel > LevelOff {
		return nil, fmt.Errorf("wasmhost: Options.LogLevel %d: want LevelTrace ... LevelOff", int(o.LogLevel))
	}
	if r.LogLevel == LevelDefault {
		r.LogLevel = LevelInfo
	}
	switch {
	case o.LogCapacity < 0:
		return nil, fmt.Errorf("wasmhost: Options.LogCapacity %d: must not be negative", o.LogCapacity)
	case o.LogCapacity == 0:
		r.LogCapacity = 4096
	}
	switch {
	case o.BufferLimit < 0:
		return nil, fmt.Errorf("wasmhost: Options.BufferLimit %d: must not be negative", o.BufferLimit)
	case o.BufferLimit == 0:
		r.BufferLimit = 1 << 20
	}
	switch {
	case o.StreamIdleTimeout < 0:
		return nil, fmt.Errorf("wasmhost: Options.StreamIdleTimeout %v: must not be negative", o.StreamIdleTimeout)
	case o.StreamIdleTimeout == 0:
		r.StreamIdleTimeout = 5 * time.Minute
	}
	for k := range o.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return nil, fmt.Errorf("wasmhost: Options.Env key %q: must be non-empty without '=' or NUL", k)
		}
	}
	if r.PluginName == "" {
		r.PluginName = "s3cors"
	}
	return r, nil
}
