package e2e_test

import (
	"context"
	"encoding/binary"
	"sort"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// Wasm value types, short.
const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// wasmSig is a function type: params -> results.
type wasmSig struct{ params, results []api.ValueType }

func (s wasmSig) String() string {
	return "(" + typeNames(s.params) + ")->(" + typeNames(s.results) + ")"
}

func typeNames(ts []api.ValueType) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = api.ValueTypeName(t)
	}
	return strings.Join(names, ",")
}

func sig(results int, params ...api.ValueType) wasmSig {
	s := wasmSig{params: params}
	if results == 1 {
		s.results = []api.ValueType{i32}
	}
	return s
}

func words(n int) []api.ValueType {
	ts := make([]api.ValueType, n)
	for i := range ts {
		ts[i] = i32
	}
	return ts
}

// envoy133WASI is the WASI surface of Envoy 1.33–1.38 (proxy-wasm-cpp-host #427, 18 functions;
// spec proxy-wasm-envoy.md §2), with the WASI preview1 types. A module importing anything
// else fails to link there ("missing import"): path_filestat_get and fd_filestat_get (os.Stat,
// os.ReadFile, mime, net/http) above all.
var envoy133WASI = map[string]wasmSig{
	"args_get":            sig(1, i32, i32),
	"args_sizes_get":      sig(1, i32, i32),
	"environ_get":         sig(1, i32, i32),
	"environ_sizes_get":   sig(1, i32, i32),
	"clock_time_get":      sig(1, i32, i64, i32),
	"fd_close":            sig(1, i32),
	"fd_fdstat_get":       sig(1, i32, i32),
	"fd_fdstat_set_flags": sig(1, i32, i32),
	"fd_prestat_get":      sig(1, i32, i32),
	"fd_prestat_dir_name": sig(1, i32, i32, i32),
	"fd_read":             sig(1, i32, i32, i32, i32),
	"fd_seek":             sig(1, i32, i64, i32, i32),
	"fd_write":            sig(1, i32, i32, i32, i32),
	"path_open":           sig(1, i32, i32, i32, i32, i32, i64, i64, i32, i32),
	"poll_oneoff":         sig(1, i32, i32, i32, i32),
	"proc_exit":           sig(0, i32),
	"random_get":          sig(1, i32, i32),
	"sched_yield":         sig(1),
}

// proxyHostFuncs are the env.proxy_* functions Envoy registers for ABI 0.2.1, with their exact
// types (§1.4): all i32 but the i64 metric value. proxy_get_configuration,
// proxy_continue_request/response and proxy_clear_route_cache are 0.1.0 only and break linking.
var proxyHostFuncs = map[string]wasmSig{
	"proxy_log":                          sig(1, words(3)...),
	"proxy_get_log_level":                sig(1, i32),
	"proxy_get_buffer_bytes":             sig(1, words(5)...),
	"proxy_set_buffer_bytes":             sig(1, words(5)...),
	"proxy_get_buffer_status":            sig(1, words(3)...),
	"proxy_get_header_map_pairs":         sig(1, words(3)...),
	"proxy_set_header_map_pairs":         sig(1, words(3)...),
	"proxy_get_header_map_value":         sig(1, words(5)...),
	"proxy_add_header_map_value":         sig(1, words(5)...),
	"proxy_replace_header_map_value":     sig(1, words(5)...),
	"proxy_remove_header_map_value":      sig(1, words(3)...),
	"proxy_get_header_map_size":          sig(1, words(2)...),
	"proxy_send_local_response":          sig(1, words(8)...),
	"proxy_continue_stream":              sig(1, i32),
	"proxy_close_stream":                 sig(1, i32),
	"proxy_get_property":                 sig(1, words(4)...),
	"proxy_set_property":                 sig(1, words(4)...),
	"proxy_define_metric":                sig(1, words(4)...),
	"proxy_increment_metric":             sig(1, i32, i64),
	"proxy_record_metric":                sig(1, i32, i64),
	"proxy_get_metric":                   sig(1, i32, i32),
	"proxy_set_effective_context":        sig(1, i32),
	"proxy_set_tick_period_milliseconds": sig(1, i32),
	"proxy_get_current_time_nanoseconds": sig(1, i32),
	"proxy_done":                         sig(1),
}

// proxyCallbacks are the guest exports Envoy knows, with the types it checks (§1.2); a known
// name with another type fails the load ("Bad function signature").
var proxyCallbacks = map[string]wasmSig{
	"_initialize":                  sig(0),
	"proxy_on_memory_allocate":     sig(1, i32),
	"proxy_on_context_create":      sig(0, i32, i32),
	"proxy_on_vm_start":            sig(1, i32, i32),
	"proxy_validate_configuration": sig(1, i32, i32),
	"proxy_on_configure":           sig(1, i32, i32),
	"proxy_on_tick":                sig(0, i32),
	"proxy_on_request_headers":     sig(1, i32, i32, i32),
	"proxy_on_request_body":        sig(1, i32, i32, i32),
	"proxy_on_request_trailers":    sig(1, i32, i32),
	"proxy_on_response_headers":    sig(1, i32, i32, i32),
	"proxy_on_response_body":       sig(1, i32, i32, i32),
	"proxy_on_response_trailers":   sig(1, i32, i32),
	"proxy_on_http_call_response":  sig(0, words(5)...),
	"proxy_on_log":                 sig(0, i32),
	"proxy_on_done":                sig(1, i32),
	"proxy_on_delete":              sig(0, i32),
}

// TestWasmModuleImportsAndExports reads build/s3cors.wasm's import and export sections and
// fails on anything Envoy 1.33 would refuse, or that would change how Envoy drives it.
func TestWasmModuleImportsAndExports(t *testing.T) {
	bin := testenv.ModuleBytes(t)
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	mod, err := rt.CompileModule(ctx, bin)
	if err != nil {
		t.Fatalf("compiling the module: %v", err)
	}

	var imported []string
	for _, f := range mod.ImportedFunctions() {
		module, name, _ := f.Import()
		got := wasmSig{f.ParamTypes(), f.ResultTypes()}
		imported = append(imported, module+"."+name)
		var want wasmSig
		var ok bool
		switch module {
		case "wasi_snapshot_preview1", "wasi_unstable":
			want, ok = envoy133WASI[name]
			if !ok {
				t.Errorf("imports %s.%s: not among Envoy 1.33's 18 WASI functions; the module would fail to link", module, name)
				continue
			}
		case "env":
			want, ok = proxyHostFuncs[name]
			if !ok {
				t.Errorf("imports env.%s: not a proxy-wasm 0.2.1 host function Envoy registers", name)
				continue
			}
		default:
			t.Errorf("imports %s.%s: unknown import module %q", module, name, module)
			continue
		}
		if got.String() != want.String() {
			t.Errorf("imports %s.%s with type %s, Envoy's is %s", module, name, got, want)
		}
	}
	sort.Strings(imported)
	t.Logf("imports: %s", strings.Join(imported, " "))

	exports := mod.ExportedFunctions()
	var markers, names []string
	for name, f := range exports {
		names = append(names, name)
		got := wasmSig{f.ParamTypes(), f.ResultTypes()}
		switch {
		case strings.HasPrefix(name, "proxy_abi_version_"):
			markers = append(markers, name)
		case name == "malloc" || name == "_start" || name == "main" || name == "__main_void":
			t.Errorf("exports %s: Envoy would call it (malloc is preferred over proxy_on_memory_allocate; _start/main change the start sequence)", name)
		default:
			want, ok := proxyCallbacks[name]
			if !ok {
				if strings.HasPrefix(name, "proxy_") {
					t.Errorf("exports %s: not a callback Envoy knows", name)
				}
				continue
			}
			if got.String() != want.String() {
				t.Errorf("exports %s with type %s, Envoy checks %s", name, got, want)
			}
		}
	}
	sort.Strings(names)
	t.Logf("exports: %s", strings.Join(names, " "))
	if len(markers) != 1 || markers[0] != "proxy_abi_version_0_2_1" {
		t.Errorf("ABI markers %q, want exactly proxy_abi_version_0_2_1", markers)
	}
	for _, name := range []string{"_initialize", "proxy_on_memory_allocate", "proxy_on_context_create",
		"proxy_on_vm_start", "proxy_on_configure", "proxy_on_request_headers",
		"proxy_on_response_headers", "proxy_on_done", "proxy_on_delete"} {
		if _, ok := exports[name]; !ok {
			t.Errorf("does not export %s", name)
		}
	}
	// Bodies must stream through: with a body callback exported Envoy would call it per chunk.
	for _, name := range []string{"proxy_on_request_body", "proxy_on_response_body"} {
		if _, ok := exports[name]; ok {
			t.Errorf("exports %s: request and response bodies should not reach the plugin", name)
		}
	}
	if _, ok := mod.ExportedMemories()["memory"]; !ok {
		t.Error(`does not export its linear memory as "memory"`)
	}
	if !hasCustomSection(t, bin, "name") {
		t.Error("no name section: Envoy's backtraces would lose function names (built with -s?)")
	}
}

// hasCustomSection scans a wasm binary's sections for a custom section called name.
func hasCustomSection(t *testing.T, bin []byte, name string) bool {
	t.Helper()
	if len(bin) < 8 || string(bin[:4]) != "\x00asm" {
		t.Fatal("not a wasm binary")
	}
	for p := 8; p < len(bin); {
		id := bin[p]
		size, n := binary.Uvarint(bin[p+1:])
		if n <= 0 {
			t.Fatalf("bad section size at offset %d", p+1)
		}
		body := p + 1 + n
		end := body + int(size)
		if end > len(bin) {
			t.Fatalf("section at offset %d overruns the module", p)
		}
		if id == 0 {
			l, m := binary.Uvarint(bin[body:])
			if m > 0 && body+m+int(l) <= end && string(bin[body+m:body+m+int(l)]) == name {
				return true
			}
		}
		p = end
	}
	return false
}
