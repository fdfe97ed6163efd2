package wasmhost

import (
	"encoding/binary"
	"strings"
)

// Headers is a header map as Envoy holds it: an ordered list of {key, value} pairs with
// repeats kept, pseudo-headers (":method", ":path", ":authority", ":scheme", ":status") first.
// Keys the host stores are lower-case; values are kept byte for byte.
type Headers [][2]string

// Get returns the first value of key (compared case-insensitively), as
// proxy_get_header_map_value answers it.
func (h Headers) Get(key string) (string, bool) {
	for _, kv := range h {
		if strings.EqualFold(kv[0], key) {
			return kv[1], true
		}
	}
	return "", false
}

// Values returns every value of key (compared case-insensitively), in order.
func (h Headers) Values(key string) []string {
	var out []string
	for _, kv := range h {
		if strings.EqualFold(kv[0], key) {
			out = append(out, kv[1])
		}
	}
	return out
}

// Clone returns a copy that shares nothing with h.
func (h Headers) Clone() Headers {
	if h == nil {
		return nil
	}
	return append(Headers(nil), h...)
}

// headerMap is Envoy's HeaderMapImpl as far as a wasm filter can observe it.
type headerMap struct {
	h Headers
	// inline is the map's set of O(1) headers (inlineRequest, inlineResponse, ...), nil for
	// none.
	inline map[string]bool
}

// newHeaderMap builds a map from caller-supplied headers the way Envoy's codecs do: keys
// lower-cased, pseudo-headers moved in front of the others (in their relative order), and a
// repeated O(1) header (inline) folded into its first line (HeaderMapImpl::addViaMove).
func newHeaderMap(in Headers, inline map[string]bool) *headerMap {
	m := &headerMap{h: make(Headers, 0, len(in)), inline: inline}
	for _, kv := range in {
		m.add(kv[0], kv[1])
	}
	return m
}

// Envoy's O(1) ("inline") headers: those of envoy/http/header_map.h (INLINE_REQ_*,
// INLINE_RESP_*, INLINE_REQ_RESP_*) and the custom inline headers that extensions linked into
// the official build register (the CORS, cache and compressor filters among them). A header
// map holds at most one line of each: a repeat, from the codec or from addCopy (the plugin's
// proxy_add_header_map_value, its local reply's headers, proxy_set_header_map_pairs), is
// appended to that line after a comma. Checked against Envoy 1.36.2 and 1.40.0 by
// e2e.TestRealEnvoyDifferential; pseudo-headers are left out (a codec refuses their repeats).
var (
	inlineRequestAndResponse = []string{
		"connection", "content-length", "content-type", "keep-alive", "proxy-connection",
		"proxy-status", "transfer-encoding", "upgrade", "via", "x-envoy-attempt-count",
		"x-envoy-decorator-operation", "x-request-id",
	}
	inlineRequest = inlineSet(inlineRequestAndResponse,
		"accept", "accept-encoding", "access-control-request-headers",
		"access-control-request-method", "access-control-request-private-network",
		"authorization", "cache-control", "expect", "grpc-timeout", "if-match",
		"if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "origin",
		"pragma", "referer", "te", "user-agent", "x-client-trace-id",
		"x-envoy-downstream-service-cluster", "x-envoy-downstream-service-node",
		"x-envoy-expected-rq-timeout-ms", "x-envoy-external-address", "x-envoy-force-trace",
		"x-envoy-hedge-on-per-try-timeout", "x-envoy-internal", "x-envoy-ip-tags",
		"x-envoy-max-retries", "x-envoy-original-path", "x-envoy-original-url",
		"x-envoy-retriable-header-names", "x-envoy-retriable-status-codes",
		"x-envoy-retry-grpc-on", "x-envoy-retry-on", "x-envoy-upstream-alt-stat-name",
		"x-envoy-upstream-rq-per-try-timeout-ms", "x-envoy-upstream-rq-timeout-alt-response",
		"x-envoy-upstream-rq-timeout-ms", "x-envoy-upstream-stream-duration-ms",
		"x-forwarded-client-cert", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto")
	inlineResponse = inlineSet(inlineRequestAndResponse,
		"access-control-allow-credentials", "access-control-allow-headers",
		"access-control-allow-methods", "access-control-allow-origin",
		"access-control-allow-private-network", "access-control-expose-headers",
		"access-control-max-age", "age", "cache-control", "content-encoding", "date", "etag",
		"expires", "grpc-message", "grpc-status", "last-modified", "location", "server", "vary",
		"x-envoy-degraded", "x-envoy-immediate-health-check-fail", "x-envoy-ratelimited",
		"x-envoy-upstream-canary", "x-envoy-upstream-healthchecked-cluster",
		"x-envoy-upstream-service-time")
	inlineResponseTrailers = inlineSet(nil, "grpc-message", "grpc-status")
)

func inlineSet(common []string, names ...string) map[string]bool {
	m := make(map[string]bool, len(common)+len(names))
	for _, n := range append(append([]string(nil), common...), names...) {
		m[n] = true
	}
	return m
}

// RequestHeaderMap returns h as Envoy's codecs build a request header map, which is what a
// filter (and an ext_proc server) is given: keys lower-cased, pseudo-headers first, and a
// repeated O(1) header (Origin, Access-Control-Request-Method and -Headers, Content-Type,
// ...) folded into its first line after a comma.
func RequestHeaderMap(h Headers) Headers { return newHeaderMap(h, inlineRequest).h }

// ResponseHeaderMap is RequestHeaderMap for response headers (Vary, Access-Control-*, ETag,
// ... are folded).
func ResponseHeaderMap(h Headers) Headers { return newHeaderMap(h, inlineResponse).h }

// lowerASCII lower-cases ASCII letters only, as Http::LowerCaseString does.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// add appends a header (HeaderMap::addCopy); a pseudo-header goes after the existing ones,
// and a repeated O(1) header is appended to its line (HeaderMapImpl::appendToHeader: after a
// comma unless that line is empty; an empty value adds nothing).
func (m *headerMap) add(key, value string) {
	key = lowerASCII(key)
	if m.inline[key] {
		for i := range m.h {
			if m.h[i][0] == key {
				switch {
				case value == "":
				case m.h[i][1] == "":
					m.h[i][1] = value
				default:
					m.h[i][1] += "," + value
				}
				return
			}
		}
	}
	if strings.HasPrefix(key, ":") {
		i := 0
		for i < len(m.h) && strings.HasPrefix(m.h[i][0], ":") {
			i++
		}
		m.h = append(m.h, [2]string{})
		copy(m.h[i+1:], m.h[i:])
		m.h[i] = [2]string{key, value}
		return
	}
	m.h = append(m.h, [2]string{key, value})
}

// get returns the first value of key.
func (m *headerMap) get(key string) (string, bool) {
	key = lowerASCII(key)
	for _, kv := range m.h {
		if kv[0] == key {
			return kv[1], true
		}
	}
	return "", false
}

// remove drops every entry of key.
func (m *headerMap) remove(key string) {
	key = lowerASCII(key)
	out := m.h[:0]
	for _, kv := range m.h {
		if kv[0] != key {
			out = append(out, kv)
		}
	}
	for i := len(out); i < len(m.h); i++ {
		m.h[i] = [2]string{}
	}
	m.h = out
}

// set replaces every entry of key by one (HeaderMap::setCopy with
// envoy.reloadable_features.http_set_copy_replace_all_headers, the default: remove, then add).
func (m *headerMap) set(key, value string) {
	m.remove(key)
	m.add(key, value)
}

// byteSize is HeaderMap::byteSize: the sum of key and value lengths.
func (m *headerMap) byteSize() uint32 {
	n := 0
	for _, kv := range m.h {
		n += len(kv[0]) + len(kv[1])
	}
	return uint32(n)
}

// Limits of proxy-wasm-cpp-host's PairsUtil::toPairs (include/proxy-wasm/limits.h).
const (
	pairsMaxBytes = 1 << 20
	pairsMaxCount = 1024
)

// pairsSize is the serialized size of h (§1.6).
func pairsSize(h Headers) int {
	n := 4
	for _, kv := range h {
		n += 8 + len(kv[0]) + 1 + len(kv[1]) + 1
	}
	return n
}

// marshalPairs writes h in the pairs encoding into dst, which must be pairsSize(h) long.
func marshalPairs(h Headers, dst []byte) {
	le := binary.LittleEndian
	le.PutUint32(dst, uint32(len(h)))
	p := 4
	for _, kv := range h {
		le.PutUint32(dst[p:], uint32(len(kv[0])))
		le.PutUint32(dst[p+4:], uint32(len(kv[1])))
		p += 8
	}
	for _, kv := range h {
		p += copy(dst[p:], kv[0])
		dst[p] = 0
		p++
		p += copy(dst[p:], kv[1])
		dst[p] = 0
		p++
	}
}

// parsePairs decodes guest-sent pairs strictly, as PairsUtil::toPairs: the buffer must be
// consumed exactly, every string NUL-terminated, at most 1 MiB and 1024 pairs. Anything else
// yields an empty list, silently, as in Envoy.
func parsePairs(b []byte) Headers {
	if len(b) > pairsMaxBytes || len(b) < 4 {
		return nil
	}
	le := binary.LittleEndian
	n := le.Uint32(b)
	if n > pairsMaxCount {
		return nil
	}
	p := 4
	if uint64(p)+uint64(n)*8 > uint64(len(b)) {
		return nil
	}
	sizes := make([][2]uint32, n)
	for i := range sizes {
		sizes[i] = [2]uint32{le.Uint32(b[p:]), le.Uint32(b[p+4:])}
		p += 8
	}
	out := make(Headers, n)
	for i, s := range sizes {
		for j := 0; j < 2; j++ {
			l := uint64(s[j])
			if uint64(p)+l+1 > uint64(len(b)) || b[p+int(l)] != 0 {
				return nil
			}
			out[i][j] = string(b[p : p+int(l)])
			p += int(l) + 1
		}
	}
	if p != len(b) {
		return nil
	}
	return out
}
