//go:build wasip1

package abi

import "unsafe"

// Results the host writes through out-pointers. They are package variables, not locals, so
// their addresses never move while a host call (and the allocator it re-enters) runs; typed,
// so the GC sees the pointer the host stores. Callbacks are serialised, so one set suffices.
var (
	retData *byte
	retSize uint32
	retWord uint32
)

// proxyHost is Host on the env.proxy_* imports.
type proxyHost struct {
	pairs []byte // reused encoding buffer for local-reply headers
}

var theProxyHost proxyHost

// ProxyHost returns the Host of the proxy running this module.
func ProxyHost() Host { return &theProxyHost }

// result returns the bytes the host just wrote through retData/retSize; they live in the
// dispatcher's arena until the next callback.
func result() []byte {
	if retSize == 0 || retData == nil {
		return nil
	}
	return unsafe.Slice(retData, retSize)
}

func (*proxyHost) Log(level LogLevel, msg string) error {
	return proxyLog(level, stringPtr(msg), uint32(len(msg))).AsError()
}

func (*proxyHost) LogLevel() (LogLevel, error) {
	retWord = 0
	if st := proxyGetLogLevel(unsafe.Pointer(&retWord)); st != StatusOk {
		return LogTrace, st
	}
	return LogLevel(retWord), nil
}

func (*proxyHost) GetBuffer(t BufferType, start, max uint32) ([]byte, error) {
	retData, retSize = nil, 0
	if st := proxyGetBufferBytes(t, start, max, unsafe.Pointer(&retData), unsafe.Pointer(&retSize)); st != StatusOk {
		return nil, st
	}
	return result(), nil
}

func (*proxyHost) GetHeader(m MapType, name string) (string, bool, error) {
	retData, retSize = nil, 0
	switch st := proxyGetHeaderMapValue(m, stringPtr(name), uint32(len(name)), unsafe.Pointer(&retData), unsafe.Pointer(&retSize)); st {
	case StatusOk:
		return bytesString(result()), true, nil
	case StatusNotFound:
		return "", false, nil
	default:
		return "", false, st
	}
}

func (*proxyHost) GetHeaders(m MapType, dst []Header) ([]Header, error) {
	retData, retSize = nil, 0
	if st := proxyGetHeaderMapPairs(m, unsafe.Pointer(&retData), unsafe.Pointer(&retSize)); st != StatusOk {
		return dst, st
	}
	return DecodePairs(dst, result())
}

func (*proxyHost) AddHeader(m MapType, name, value string) error {
	return proxyAddHeaderMapValue(m, stringPtr(name), uint32(len(name)), stringPtr(value), uint32(len(value))).AsError()
}

func (*proxyHost) ReplaceHeader(m MapType, name, value string) error {
	return proxyReplaceHeaderMapValue(m, stringPtr(name), uint32(len(name)), stringPtr(value), uint32(len(value))).AsError()
}

func (*proxyHost) RemoveHeader(m MapType, name string) error {
	return proxyRemoveHeaderMapValue(m, stringPtr(name), uint32(len(name))).AsError()
}

func (h *proxyHost) SendLocalResponse(status uint32, details string, body []byte, headers []Header, grpcStatus int32) error {
	var err error
	// Envoy silently drops a malformed or oversized pairs buffer; refuse it here instead.
	if h.pairs, err = EncodePairs(h.pairs[:0], headers); err != nil {
		return err
	}
	return proxySendLocalResponse(status, stringPtr(details), uint32(len(details)),
		bytesPtr(body), uint32(len(body)), bytesPtr(h.pairs), uint32(len(h.pairs)), grpcStatus).AsError()
}

func (*proxyHost) DefineMetric(t MetricType, name string) (uint32, error) {
	retWord = 0
	if st := proxyDefineMetric(t, stringPtr(name), uint32(len(name)), unsafe.Pointer(&retWord)); st != StatusOk {
		return 0, st
	}
	return retWord, nil
}

func (*proxyHost) IncrementMetric(id uint32, delta int64) error {
	return proxyIncrementMetric(id, delta).AsError()
}

// bytesPtr returns the address of b's first byte, or nil for an empty b.
func bytesPtr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

// stringPtr returns the address of s's first byte, or nil for an empty s.
func stringPtr(s string) unsafe.Pointer {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Pointer(unsafe.StringData(s))
}
