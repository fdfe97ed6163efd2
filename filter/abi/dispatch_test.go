package abi_test

import (
	"strings"
	"testing"

	"github.com/s3cors/s3cors/filter/abi"
	"github.com/s3cors/s3cors/filter/abi/abitest"
)

// panicky panics in every callback.
type panicky struct{ recovered []string }

func (*panicky) OnVMStart(uint32, uint32) bool   { panic("vm start") }
func (*panicky) OnConfigure(uint32, uint32) bool { panic("configure") }
func (*panicky) OnContextCreate(uint32, uint32)  { panic("context create") }
func (*panicky) OnRequestHeaders(uint32, uint32, bool) abi.Action {
	panic("request headers")
}
func (*panicky) OnResponseHeaders(uint32, uint32, bool) abi.Action {
	panic("response headers")
}
func (*panicky) OnDone(uint32) bool               { panic("done") }
func (*panicky) OnDelete(uint32)                  { panic("delete") }
func (p *panicky) RecoveredPanic(callback string) { p.recovered = append(p.recovered, callback) }

func TestDispatcherRecoversEveryCallback(t *testing.T) {
	h := abitest.NewHost()
	p := &panicky{}
	d := abi.NewDispatcher(p, h)
	if got := d.OnVMStart(1, 0); got != 0 {
		t.Errorf("OnVMStart after a panic = %d, want 0 (refuse to start)", got)
	}
	if got := d.OnConfigure(1, 0); got != 0 {
		t.Errorf("OnConfigure after a panic = %d, want 0 (refuse the configuration)", got)
	}
	d.OnContextCreate(2, 1)
	if got := d.OnRequestHeaders(2, 3, 1); got != abi.Continue {
		t.Errorf("OnRequestHeaders after a panic = %d, want Continue", got)
	}
	if got := d.OnResponseHeaders(2, 3, 1); got != abi.Continue {
		t.Errorf("OnResponseHeaders after a panic = %d, want Continue", got)
	}
	if got := d.OnDone(2); got != 1 {
		t.Errorf("OnDone after a panic = %d, want 1", got)
	}
	d.OnDelete(2)

	want := []string{"proxy_on_vm_start", "proxy_on_configure", "proxy_on_context_create",
		"proxy_on_request_headers", "proxy_on_response_headers", "proxy_on_done", "proxy_on_delete"}
	if strings.Join(p.recovered, ",") != strings.Join(want, ",") {
		t.Errorf("RecoveredPanic calls %q, want %q", p.recovered, want)
	}
	logs := h.Logs()
	if len(logs) != len(want) {
		t.Fatalf("%d log lines, want one per panic (%d): %q", len(logs), len(want), logs)
	}
	for i, l := range logs {
		if l.Level != abi.LogCritical || !strings.Contains(l.Message, want[i]+": recovered from panic") ||
			!strings.Contains(l.Message, "goroutine") {
			t.Errorf("log %d = %v %q, want a critical line naming %s with a stack", i, l.Level, l.Message, want[i])
		}
	}
}

func TestDispatcherWithoutPluginRefusesToStart(t *testing.T) {
	h := abitest.NewHost()
	d := abi.NewDispatcher(nil, h)
	if got := d.OnVMStart(1, 0); got != 0 {
		t.Errorf("OnVMStart without a plugin = %d, want 0", got)
	}
	if got := d.OnRequestHeaders(2, 0, 1); got != abi.Continue {
		t.Errorf("OnRequestHeaders without a plugin = %d, want Continue", got)
	}
	if logs := h.Logs(); len(logs) != 1 || !strings.Contains(logs[0].Message, "abi.Register") {
		t.Errorf("logs = %q, want one line pointing at abi.Register", logs)
	}
}

func TestStatusError(t *testing.T) {
	if err := abi.StatusOk.AsError(); err != nil {
		t.Errorf("StatusOk.AsError() = %v, want nil", err)
	}
	if got := abi.StatusNotFound.Error(); got != "abi: host call failed: not found" {
		t.Errorf("StatusNotFound.Error() = %q", got)
	}
	if got := abi.Status(99).Error(); got != "abi: host call failed: status 99" {
		t.Errorf("Status(99).Error() = %q", got)
	}
}
