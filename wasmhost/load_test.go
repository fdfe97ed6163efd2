package wasmhost

import (
	"strings"
	"testing"

	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// TestLoadFates gives each test guest the fate Envoy gives it, per profile. The messages are
// Envoy's (proxy-wasm-cpp-host src/wasm.cc, src/v8/v8.cc), not the guests' own view.
func TestLoadFates(t *testing.T) {
	type fate struct {
		stage   string // "" loads
		message string // Envoy's message, exact
		logs    []string
	}
	ok := fate{}
	missingMalloc := fate{stage: "exports", message: "Wasm module is missing malloc function."}
	tests := []struct {
		guest  string
		plugin string
		fates  map[Profile]fate
	}{
		{guest: "noop", fates: map[Profile]fate{Envoy133: ok, Envoy139: ok}},
		{guest: "stat", fates: map[Profile]fate{
			Envoy133: {stage: "link", message: "Failed to load Wasm module due to a missing import: wasi_snapshot_preview1.path_filestat_get",
				logs: []string{"missing import"}},
			Envoy139: {logs: []string{"stat error: "}},
		}},
		{guest: "inithostcall", fates: map[Profile]fate{
			Envoy133: {stage: "initialize", message: "Failed to initialize Wasm code",
				logs: []string{"Function: _initialize failed: Uncaught Error: restricted_callback"}},
			Envoy139: {stage: "initialize", message: "Failed to initialize Wasm code",
				logs: []string{"Function: _initialize failed: Uncaught Error: restricted_callback"}},
		}},
		{guest: "initpoll", fates: map[Profile]fate{
			Envoy133: {stage: "initialize", message: "Failed to initialize Wasm code", logs: []string{"restricted_callback"}},
			Envoy139: {logs: []string{"initpoll errno=0"}},
		}},
		{guest: "badsig", fates: map[Profile]fate{
			Envoy133: {stage: "exports", message: "Bad function signature for: proxy_on_request_headers, want: i32 i32 i32 -> i32, but the module exports: i32 i32 -> i32"},
			Envoy139: {stage: "exports", message: "Bad function signature for: proxy_on_request_headers, want: i32 i32 i32 -> i32, but the module exports: i32 i32 -> i32"},
		}},
		{guest: "nomarker", fates: map[Profile]fate{
			Envoy133: {stage: "abi", message: "Missing or unknown Proxy-Wasm ABI version"},
			Envoy139: {stage: "abi", message: "Missing or unknown Proxy-Wasm ABI version"},
		}},
		{guest: "noalloc", fates: map[Profile]fate{Envoy133: missingMalloc, Envoy139: missingMalloc}},
		{guest: "abi020", fates: map[Profile]fate{
			Envoy133: {stage: "link", message: "Failed to load Wasm module due to a missing import: env.proxy_get_log_level"},
			Envoy139: {stage: "link", message: "Failed to load Wasm module due to a missing import: env.proxy_get_log_level"},
		}},
		{guest: "probe", plugin: "reject", fates: map[Profile]fate{
			Envoy133: {stage: "configure", message: "Failed to configure base Wasm plugin"},
			Envoy139: {stage: "configure", message: "Failed to configure base Wasm plugin"},
		}},
	}
	for _, tt := range tests {
		for _, p := range profilesUnderTest {
			t.Run(tt.guest+"/"+string(p), func(t *testing.T) {
				want := tt.fates[p]
				h, err := tryHost(t, tt.guest, Options{Profile: p, PluginConfig: []byte(tt.plugin)})
				if want.stage == "" {
					if err != nil {
						t.Fatalf("New: %v; Envoy %s loads this module", err, p)
					}
				} else {
					if err == nil {
						t.Fatalf("New succeeded; Envoy %s refuses this module with %q", p, want.message)
					}
					le := loadErr(t, err)
					if le.Stage != want.stage || le.Message != want.message {
						t.Fatalf("LoadError{Stage: %q, Message: %q}, want {%q, %q}", le.Stage, le.Message, want.stage, want.message)
					}
					if !strings.Contains(err.Error(), want.message) || !strings.HasPrefix(err.Error(), "wasmhost: ") {
						t.Errorf("error text %q lacks the package prefix or Envoy's message", err)
					}
				}
				for _, l := range want.logs {
					if h != nil && !hasLine(h, l) {
						t.Errorf("logs lack %q:\n%s", l, strings.Join(messages(h, ""), "\n"))
					}
				}
				if h == nil && len(want.logs) > 0 {
					// A refused module leaves no Host; its lines are in the error's cause.
					found := false
					for _, l := range want.logs {
						if strings.Contains(err.Error(), l) || strings.Contains(want.message, l) {
							found = true
						}
					}
					if !found {
						t.Errorf("error %q lacks %q", err, want.logs)
					}
				}
			})
		}
	}
}

// TestCheckMatchesNew: Check, the static version of the load checks, agrees with New for
// modules refused before they run.
func TestCheckMatchesNew(t *testing.T) {
	for _, tt := range []struct {
		guest, want string
		p           Profile
	}{
		{"stat", "Failed to load Wasm module due to a missing import: wasi_snapshot_preview1.path_filestat_get", Envoy133},
		{"stat", "", Envoy139},
		{"badsig", "Bad function signature for: proxy_on_request_headers", Envoy139},
		{"nomarker", "Missing or unknown Proxy-Wasm ABI version", Envoy133},
		{"noalloc", "Wasm module is missing malloc function.", Envoy133},
		{"noop", "", Envoy133},
	} {
		err := Check(testenv.GuestBytes(t, tt.guest), tt.p)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("Check(%s, %s) = %v, want nil", tt.guest, tt.p, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("Check(%s, %s) = %v, want %q", tt.guest, tt.p, err, tt.want)
		}
	}
	if err := Check([]byte("not wasm"), Envoy133); err == nil || loadErr(t, err).Message != "Failed to parse corrupted Wasm module" {
		t.Errorf("Check(garbage) = %v, want Envoy's corrupted-module message", err)
	}
}

// TestStartFunctions: _initialize runs in every VM (base, canary, each worker), and
// __main_void only on profiles whose cpp-host calls it (Envoy 1.39).
func TestStartFunctions(t *testing.T) {
	for _, p := range profilesUnderTest {
		t.Run(string(p), func(t *testing.T) {
			h := newHost(t, "mainvoid", Options{Profile: p, Workers: 2})
			got := countLines(h, "__main_void called")
			want := 0
			if p == Envoy139 {
				want = 4 // base, canary, two workers
			}
			if got != want {
				t.Errorf("__main_void ran %d times, want %d", got, want)
			}
		})
	}
}

// TestMallocPreferred: with both malloc and proxy_on_memory_allocate exported, Envoy uses
// malloc.
func TestMallocPreferred(t *testing.T) {
	h := newHost(t, "mallocpref", Options{})
	s := h.NewStream()
	s.RequestHeaders(req(""), true)
	s.Done()
	if !hasLine(h, "allocator malloc") {
		t.Errorf("malloc was not used:\n%s", strings.Join(messages(h, ""), "\n"))
	}
	if hasLine(h, "allocator proxy_on_memory_allocate") {
		t.Error("proxy_on_memory_allocate was used although malloc is exported")
	}
}

func TestParseProfile(t *testing.T) {
	for in, want := range map[string]Profile{
		"envoy-1.33": Envoy133, "envoy-1.36": Envoy133, "envoy-1.38": Envoy133,
		"envoy-1.39": Envoy139, "envoy-1.41": Envoy139,
	} {
		got, err := ParseProfile(in)
		if err != nil || got != want {
			t.Errorf("ParseProfile(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "envoy-1.32", "envoy-1.3x", "1.33", "envoy-2.0"} {
		if _, err := ParseProfile(in); err == nil || !strings.Contains(err.Error(), "wasmhost: ") {
			t.Errorf("ParseProfile(%q) error = %v, want a wasmhost error", in, err)
		}
	}
}

func TestOptionsValidation(t *testing.T) {
	mod := []byte("\x00asm\x01\x00\x00\x00")
	for _, tt := range []struct {
		o    Options
		want string
	}{
		{Options{}, "Options.Module is empty"},
		{Options{Module: mod, Profile: "envoy-9"}, `Options.Profile "envoy-9"`},
		{Options{Module: mod, Workers: -1}, "Options.Workers -1"},
		{Options{Module: mod, FailurePolicy: 7}, "Options.FailurePolicy 7"},
		{Options{Module: mod, Env: map[string]string{"A=B": "x"}}, `Options.Env key "A=B"`},
		{Options{Module: mod, BufferLimit: -5}, "Options.BufferLimit -5"},
	} {
		if _, err := tt.o.resolve(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("resolve(%+v) = %v, want an error with %q", tt.o, err, tt.want)
		}
	}
}
