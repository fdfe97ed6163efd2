// Package abitest runs an abi.Plugin natively, against an in-memory host with Envoy's
// semantics, so the plugin logic is tested (and benchmarked) without a wasm build: the same
// callback order, the same map availability rules, Envoy's local-reply behaviour, metric ids
// and status codes (spec proxy-wasm-envoy.md §1). It is the native half of every filter test;
// the other half runs the built module in wasmhost.
//
// Data the host returns to the plugin is poisoned when the callback that obtained it returns,
// as it is in the module (it lives in memory reused by the next callback), so a plugin that
// keeps a returned string past its callback fails its tests here too.
//
//	h := abitest.NewHost()
//	vm := abitest.NewVM(h, filter.New(h))
//	root, err := vm.StartPlugin(config)
//	s := vm.NewStream(root)
//	s.RequestHeaders(headers, true)
//	if r := s.Reply(); r != nil { ... } else { s.ResponseHeaders(upstream, false) }
//	s.End()
//
// Where it sits: test support for filter and filter/abi, imported only by their tests.
package abitest

import (
	"strings"
	"unicode"
	"unsafe"

	"github.com/s3cors/s3cors/filter/abi"
)

// LogEntry is one proxy_log line.
type LogEntry struct {
	Level   abi.LogLevel
	Message string
}

// LocalReply is what a plugin passed to proxy_send_local_response.
type LocalReply struct {
	Status     uint32
	Details    string // whitespace replaced by '_', as Envoy does
	Body       []byte
	Headers    []abi.Header // as passed, names lower-cased
	GRPCStatus int32
}

type metric struct {
	name string
	typ  abi.MetricType
}

// Host is an in-memory abi.Host. The zero value is not usable; call NewHost.
type Host struct {
	// Level is the proxy's log level: lines below it are dropped, as Envoy drops them, and
	// LogLevel reports it. NewHost sets LogTrace, so tests see everything.
	Level abi.LogLevel
	// VMConfig is the VM configuration buffer.
	VMConfig []byte

	logs       []LogEntry
	metrics    map[uint32]*metric
	byName     map[string]int64
	nextMetric [3]uint32

	configuring  bool
	pluginConfig []byte
	stream       *Stream // the stream whose callback is running, nil otherwise
	scratch      [][]byte
	hostCalls    int
}

// NewHost returns a host logging at LogTrace.
func NewHost() *Host {
	return &Host{
		Level:   abi.LogTrace,
		metrics: map[uint32]*metric{},
		byName:  map[string]int64{},
	}
}

// Logs returns every line logged at or above Level, oldest first.
func (h *Host) Logs() []LogEntry { return append([]LogEntry(nil), h.logs...) }

// Metrics returns every defined metric's value by name.
func (h *Host) Metrics() map[string]int64 {
	m := make(map[string]int64, len(h.byName))
	for k, v := range h.byName {
		m[k] = v
	}
	return m
}

// HostCalls counts the host calls made so far (every Host method).
func (h *Host) HostCalls() int { return h.hostCalls }

// copyOut hands the plugin a copy of b in memory that is poisoned when the callback returns.
func (h *Host) copyOut(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	c := make([]byte, len(b))
	copy(c, b)
	if len(c) <= abi.LargeData { // larger data is the caller's to keep (abi.Host.GetBuffer)
		h.scratch = append(h.scratch, c)
	}
	return c
}

// endCallback poisons everything handed out during the callback.
func (h *Host) endCallback() {
	for _, b := range h.scratch {
		for i := range b {
			b[i] = 0xA5
		}
	}
	h.scratch = h.scratch[:0]
}

func (h *Host) Log(level abi.LogLevel, msg string) error {
	h.hostCalls++
	if level > abi.LogCritical {
		return abi.StatusBadArgument
	}
	if level >= h.Level {
		h.logs = append(h.logs, LogEntry{Level: level, Message: strings.Clone(msg)})
	}
	return nil
}

func (h *Host) LogLevel() (abi.LogLevel, error) {
	h.hostCalls++
	return h.Level, nil
}

func (h *Host) GetBuffer(t abi.BufferType, start, max uint32) ([]byte, error) {
	h.hostCalls++
	var buf []byte
	switch t {
	case abi.VMConfiguration:
		buf = h.VMConfig
	case abi.PluginConfiguration:
		if !h.configuring {
			return nil, abi.StatusNotFound
		}
		buf = h.pluginConfig
	case abi.HTTPRequestBody, abi.HTTPResponseBody:
		return nil, abi.StatusNotFound
	default:
		if t > 8 {
			return nil, abi.StatusBadArgument
		}
		return nil, abi.StatusNotFound
	}
	if uint64(start)+uint64(max) > 1<<32-1 {
		return nil, abi.StatusBadArgument
	}
	if int(start) >= len(buf) || max == 0 {
		return nil, nil
	}
	end := len(buf)
	if int(start+max) < end {
		end = int(start + max)
	}
	return h.copyOut(buf[start:end]), nil
}

// headerMap returns the map a callback may use now; nil when it is not available.
func (h *Host) headerMap(m abi.MapType) *[]abi.Header {
	s := h.stream
	if s == nil {
		return nil
	}
	switch m {
	case abi.RequestHeaders:
		if s.requestOpen {
			return &s.request
		}
	case abi.ResponseHeaders:
		if s.responseOpen {
			return &s.response
		}
	}
	return nil
}

func (h *Host) GetHeader(m abi.MapType, name string) (string, bool, error) {
	h.hostCalls++
	if m > 7 {
		return "", false, abi.StatusBadArgument
	}
	hm := h.headerMap(m)
	if hm == nil {
		return "", false, abi.StatusBadArgument
	}
	name = strings.ToLower(name)
	for _, x := range *hm {
		if x.Name == name {
			// A view of poisonable memory, as the module's view of its arena.
			v := h.copyOut([]byte(x.Value))
			if len(v) == 0 {
				return "", true, nil
			}
			return unsafe.String(&v[0], len(v)), true, nil
		}
	}
	return "", false, nil
}

func (h *Host) GetHeaders(m abi.MapType, dst []abi.Header) ([]abi.Header, error) {
	h.hostCalls++
	if m > 7 {
		return dst, abi.StatusBadArgument
	}
	hm := h.headerMap(m)
	if hm == nil || len(*hm) == 0 {
		return dst, nil
	}
	enc, err := abi.EncodePairs(nil, *hm)
	if err != nil {
		return dst, err
	}
	return abi.DecodePairs(dst, h.copyOut(enc))
}

func (h *Host) AddHeader(m abi.MapType, name, value string) error {
	h.hostCalls++
	hm := h.headerMap(m)
	if hm == nil {
		return abi.StatusBadArgument
	}
	*hm = append(*hm, abi.Header{Name: strings.ToLower(name), Value: strings.Clone(value)})
	return nil
}

func (h *Host) ReplaceHeader(m abi.MapType, name, value string) error {
	h.hostCalls++
	hm := h.headerMap(m)
	if hm == nil {
		return abi.StatusBadArgument
	}
	name = strings.ToLower(name)
	out := (*hm)[:0]
	replaced := false
	for _, x := range *hm {
		if x.Name != name {
			out = append(out, x)
		} else if !replaced {
			out = append(out, abi.Header{Name: name, Value: strings.Clone(value)})
			replaced = true
		}
	}
	if !replaced {
		out = append(out, abi.Header{Name: name, Value: strings.Clone(value)})
	}
	*hm = out
	return nil
}

func (h *Host) RemoveHeader(m abi.MapType, name string) error {
	h.hostCalls++
	hm := h.headerMap(m)
	if hm == nil {
		return abi.StatusBadArgument
	}
	name = strings.ToLower(name)
	out := (*hm)[:0]
	for _, x := range *hm {
		if x.Name != name {
			out = append(out, x)
		}
	}
	*hm = out
	return nil
}

func (h *Host) SendLocalResponse(status uint32, details string, body []byte, headers []abi.Header, grpcStatus int32) error {
	h.hostCalls++
	s := h.stream
	if s == nil {
		return nil // Envoy: silently nothing outside a stream
	}
	if s.reply != nil || s.pendingReply != nil {
		s.ignoredReplies++
		return nil
	}
	r := &LocalReply{
		Status:     status,
		Details:    strings.Map(underscoreSpace, details),
		Body:       append([]byte(nil), body...),
		GRPCStatus: grpcStatus,
	}
	for _, x := range headers {
		r.Headers = append(r.Headers, abi.Header{Name: strings.ToLower(x.Name), Value: strings.Clone(x.Value)})
	}
	s.pendingReply = r
	return nil
}

func (h *Host) DefineMetric(t abi.MetricType, name string) (uint32, error) {
	h.hostCalls++
	if t > abi.Histogram {
		return 0, abi.StatusBadArgument
	}
	h.nextMetric[t]++
	id := h.nextMetric[t]<<2 | uint32(t)
	h.metrics[id] = &metric{name: strings.Clone(name), typ: t}
	if _, ok := h.byName[name]; !ok {
		h.byName[strings.Clone(name)] = 0
	}
	return id, nil
}

func (h *Host) IncrementMetric(id uint32, delta int64) error {
	h.hostCalls++
	m, ok := h.metrics[id]
	if !ok {
		return abi.StatusNotFound
	}
	switch m.typ {
	case abi.Counter:
		if delta <= 0 {
			return abi.StatusBadArgument
		}
	case abi.Histogram:
		return abi.StatusBadArgument
	}
	h.byName[m.name] += delta
	return nil
}

// underscoreSpace is Envoy's treatment of local-reply details: whitespace becomes '_'.
func underscoreSpace(r rune) rune {
	if unicode.IsSpace(r) {
		return '_'
	}
	return r
}
