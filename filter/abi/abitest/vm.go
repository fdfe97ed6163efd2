package abitest

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/s3cors/s3cors/filter/abi"
)

// VM drives a plugin through the callback sequence Envoy uses for one worker VM, through an
// abi.Dispatcher (so panics are recovered exactly as in the module).
type VM struct {
	host   *Host
	d      *abi.Dispatcher
	nextID uint32
}

// NewVM returns a VM running p against h. The plugin should have been built on h.
func NewVM(h *Host, p abi.Plugin) *VM {
	return &VM{host: h, d: abi.NewDispatcher(p, h)}
}

// Host returns the VM's host.
func (vm *VM) Host() *Host { return vm.host }

func (vm *VM) newID() uint32 {
	vm.nextID++
	return vm.nextID
}

// StartPlugin creates a root context and runs on_vm_start then on_configure with config, as
// Envoy does for each plugin of a VM. It returns the root context id; the error says which step
// refused.
func (vm *VM) StartPlugin(config []byte) (uint32, error) {
	root := vm.newID()
	vm.d.OnContextCreate(root, 0)
	vm.host.endCallback()
	ok := vm.d.OnVMStart(root, uint32(len(vm.host.VMConfig)))
	vm.host.endCallback()
	if ok == 0 {
		return root, fmt.Errorf("abitest: proxy_on_vm_start(%d) refused to start", root)
	}
	if !vm.Configure(root, config) {
		return root, fmt.Errorf("abitest: proxy_on_configure(%d) refused the configuration", root)
	}
	return root, nil
}

// Configure runs on_configure on an existing root context with config and reports whether the
// plugin accepted it.
func (vm *VM) Configure(root uint32, config []byte) bool {
	vm.host.configuring, vm.host.pluginConfig = true, config
	ok := vm.d.OnConfigure(root, uint32(len(config)))
	vm.host.configuring, vm.host.pluginConfig = false, nil
	vm.host.endCallback()
	return ok != 0
}

// StopPlugin runs on_done then on_delete on a root context.
func (vm *VM) StopPlugin(root uint32) {
	vm.d.OnDone(root)
	vm.host.endCallback()
	vm.d.OnDelete(root)
	vm.host.endCallback()
}

// Stream is one HTTP stream through the plugin. Call RequestHeaders, then (unless the plugin
// replied) ResponseHeaders, then End.
type Stream struct {
	vm   *VM
	root uint32
	id   uint32

	created      bool
	request      []abi.Header
	requestOpen  bool
	response     []abi.Header
	responseOpen bool

	pendingReply   *LocalReply
	reply          *LocalReply
	ignoredReplies int
	ended          bool
}

// NewStream starts a stream under root; its context is created lazily, as Envoy does, when the
// first callback runs.
func (vm *VM) NewStream(root uint32) *Stream {
	return &Stream{vm: vm, root: root}
}

// ID returns the stream's context id (0 until its first callback).
func (s *Stream) ID() uint32 { return s.id }

func (s *Stream) create() {
	if s.created {
		return
	}
	s.created = true
	s.id = s.vm.newID()
	s.vm.d.OnContextCreate(s.id, s.root)
	s.vm.host.endCallback()
}

// RequestHeaders delivers the request headers (pseudo-headers :method, :authority, :path
// first, as Envoy does; names are lower-cased). If the plugin sent a local reply, the reply is
// then run through the plugin's response callback as Envoy runs it, and Reply returns it.
func (s *Stream) RequestHeaders(headers []abi.Header, endOfStream bool) abi.Action {
	s.create()
	s.request = lowerAll(headers)
	s.requestOpen = true
	h := s.vm.host
	h.stream = s
	a := s.vm.d.OnRequestHeaders(s.id, uint32(len(s.request)), word(endOfStream))
	h.stream = nil
	h.endCallback()
	// Envoy drops its pointer to the request headers once the filter continues.
	if a == abi.Continue || s.pendingReply != nil {
		s.requestOpen = false
	}
	if s.pendingReply != nil {
		s.sendLocalReply()
		return abi.Pause // Envoy forces a stop after a local reply
	}
	return a
}

// sendLocalReply does what Envoy's sendLocalReply does after the callback: build the response
// headers (:status, the plugin's headers, then content-length and a default
// content-type: text/plain when there is a body, neither when there is none) and run them
// through the plugin's response-headers callback.
func (s *Stream) sendLocalReply() {
	r := s.pendingReply
	s.pendingReply, s.reply = nil, r
	hs := []abi.Header{{Name: ":status", Value: strconv.FormatUint(uint64(r.Status), 10)}}
	hs = append(hs, r.Headers...)
	if len(r.Body) > 0 {
		hs = setHeader(hs, "content-length", strconv.Itoa(len(r.Body)))
		if !hasHeader(hs, "content-type") {
			hs = append(hs, abi.Header{Name: "content-type", Value: "text/plain"})
		}
	} else {
		hs = removeHeader(hs, "content-length")
		hs = removeHeader(hs, "content-type")
	}
	s.runResponseHeaders(hs, len(r.Body) == 0)
}

// ResponseHeaders delivers the upstream's response headers (include ":status") and returns
// the plugin's action; Headers then returns them as the client gets them.
func (s *Stream) ResponseHeaders(headers []abi.Header, endOfStream bool) abi.Action {
	s.create()
	return s.runResponseHeaders(lowerAll(headers), endOfStream)
}

func (s *Stream) runResponseHeaders(headers []abi.Header, endOfStream bool) abi.Action {
	s.response = headers
	s.responseOpen = true
	h := s.vm.host
	h.stream = s
	a := s.vm.d.OnResponseHeaders(s.id, uint32(len(s.response)), word(endOfStream))
	h.stream = nil
	h.endCallback()
	s.responseOpen = false
	if s.pendingReply != nil {
		// A local reply while the response is under way: Envoy ignores it.
		s.pendingReply = nil
		s.ignoredReplies++
	}
	return a
}

// Request returns the request headers as they go upstream (after the plugin's callback).
func (s *Stream) Request() []abi.Header { return append([]abi.Header(nil), s.request...) }

// Reply returns the local reply the plugin sent, nil if none.
func (s *Stream) Reply() *LocalReply { return s.reply }

// IgnoredReplies counts local replies the plugin attempted after its first one or after the
// response had started; Envoy ignores them (and historically hung the client).
func (s *Stream) IgnoredReplies() int { return s.ignoredReplies }

// Headers returns the response headers as the client receives them: the upstream's (or the
// local reply's) after the plugin's response callback.
func (s *Stream) Headers() []abi.Header { return append([]abi.Header(nil), s.response...) }

// End finishes the stream: on_done then on_delete (Envoy's order; a stream whose context was
// never created is created first, as Envoy's access-log path does).
func (s *Stream) End() {
	if s.ended {
		return
	}
	s.ended = true
	s.create()
	s.vm.d.OnDone(s.id)
	s.vm.host.endCallback()
	s.vm.d.OnDelete(s.id)
	s.vm.host.endCallback()
}

func word(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

func lowerAll(hs []abi.Header) []abi.Header {
	out := make([]abi.Header, len(hs))
	for i, h := range hs {
		out[i] = abi.Header{Name: strings.ToLower(h.Name), Value: h.Value}
	}
	return out
}

func hasHeader(hs []abi.Header, name string) bool {
	for _, h := range hs {
		if h.Name == name {
			return true
		}
	}
	return false
}

func removeHeader(hs []abi.Header, name string) []abi.Header {
	out := hs[:0]
	for _, h := range hs {
		if h.Name != name {
			out = append(out, h)
		}
	}
	return out
}

func setHeader(hs []abi.Header, name, value string) []abi.Header {
	return append(removeHeader(hs, name), abi.Header{Name: name, Value: value})
}
