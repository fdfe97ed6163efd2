package abitest_test

import (
	"strings"
	"testing"

	"github.com/s3cors/s3cors/filter/abi"
	"github.com/s3cors/s3cors/filter/abi/abitest"
)

// keeper keeps the Origin string the host returned in on_request_headers and reads it again in
// on_response_headers, which a plugin must never do: in the module that string views the
// arena, which the next callback reuses.
type keeper struct {
	host        abi.Host
	kept, later string
	copied      string
}

func (*keeper) OnVMStart(uint32, uint32) bool   { return true }
func (*keeper) OnConfigure(uint32, uint32) bool { return true }
func (*keeper) OnContextCreate(uint32, uint32)  {}
func (p *keeper) OnRequestHeaders(uint32, uint32, bool) abi.Action {
	p.kept, _, _ = p.host.GetHeader(abi.RequestHeaders, "origin")
	p.copied = strings.Clone(p.kept)
	return abi.Continue
}

func (p *keeper) OnResponseHeaders(uint32, uint32, bool) abi.Action {
	p.later = strings.Clone(p.kept)
	return abi.Continue
}
func (*keeper) OnDone(uint32) bool { return true }
func (*keeper) OnDelete(uint32)    {}

// TestHostDataIsPoisonedAfterItsCallback: the test host makes a plugin that keeps host data
// past its callback fail, as the module's arena would (it is reset at the start of every
// callback), so every plugin test driven through abitest guards the filter's copies.
func TestHostDataIsPoisonedAfterItsCallback(t *testing.T) {
	h := abitest.NewHost()
	p := &keeper{host: h}
	vm := abitest.NewVM(h, p)
	root, err := vm.StartPlugin(nil)
	if err != nil {
		t.Fatal(err)
	}
	s := vm.NewStream(root)
	s.RequestHeaders([]abi.Header{{Name: ":method", Value: "GET"}, {Name: ":path", Value: "/b/k"},
		{Name: ":authority", Value: "s3.example.test"}, {Name: "origin", Value: "https://app.example"}}, true)
	s.ResponseHeaders([]abi.Header{{Name: ":status", Value: "200"}}, true)
	s.End()
	if p.copied != "https://app.example" {
		t.Fatalf("origin in its callback = %q", p.copied)
	}
	if p.later == p.copied || !allPoison(p.later) {
		t.Errorf("origin kept past its callback reads %q, want poison (0xA5 bytes)", p.later)
	}
}

// allPoison reports whether s is nothing but the test host's poison byte, 0xA5.
func allPoison(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != 0xa5 {
			return false
		}
	}
	return true
}
