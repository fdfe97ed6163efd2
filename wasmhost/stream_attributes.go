package wasmhost

import (
	"strconv"
	"strings"
	"time"
)

// attribute answers the request.* and response.* properties Envoy's StreamActivation offers,
// from the maps the plugin can currently see (none once a callback let them go).
func (s *Stream) attribute(parts []string) ([]byte, wasmResult) {
	reqMap := s.req.heldHeaders()
	respMap := s.resp.heldHeaders()
	if s.accessLog {
		reqMap, respMap = s.req.headers, s.resp.headers
	}
	switch parts[0] {
	case "request":
		if len(parts) < 2 {
			return nil, resultNotFound
		}
		if parts[1] == "protocol" && len(parts) == 2 {
			return []byte("HTTP/1.1"), resultOk
		}
		if parts[1] == "time" && len(parts) == 2 {
			var b [8]byte
			le.PutUint64(b[:], uint64(time.Now().UnixNano()))
			return b[:], resultOk
		}
		if reqMap == nil {
			return nil, resultNotFound
		}
		get := func(k string) ([]byte, wasmResult) {
			v, ok := reqMap.get(k)
			if !ok || len(parts) != 2 {
				return nil, resultNotFound
			}
			return []byte(v), resultOk
		}
		switch parts[1] {
		case "path":
			return get(":path")
		case "host":
			return get(":authority")
		case "scheme":
			return get(":scheme")
		case "method":
			return get(":method")
		case "referer":
			return get("referer")
		case "useragent":
			return get("user-agent")
		case "id":
			return get("x-request-id")
		case "url_path", "query":
			p, ok := reqMap.get(":path")
			if !ok || len(parts) != 2 {
				return nil, resultNotFound
			}
			path, query, _ := strings.Cut(p, "?")
			if parts[1] == "query" {
				return []byte(query), resultOk
			}
			return []byte(path), resultOk
		case "headers":
			return headerAttribute(reqMap, parts[2:])
		}
	case "response":
		if len(parts) < 2 {
			return nil, resultNotFound
		}
		switch parts[1] {
		case "code_details":
			if s.details == "" || len(parts) != 2 {
				return nil, resultNotFound
			}
			return []byte(s.details), resultOk
		case "code":
			m := respMap
			if m == nil && s.resp.headers != nil && s.respEncoded {
				m = s.resp.headers
			}
			if m == nil || len(parts) != 2 {
				return nil, resultNotFound
			}
			v, _ := m.get(":status")
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, resultNotFound
			}
			var b [8]byte
			le.PutUint64(b[:], uint64(n))
			return b[:], resultOk
		case "headers":
			if respMap == nil {
				return nil, resultNotFound
			}
			return headerAttribute(respMap, parts[2:])
		}
	}
	return nil, resultNotFound
}

// headerAttribute is a header map property: the whole map as pairs, or one header's values
// joined with ",".
func headerAttribute(m *headerMap, rest []string) ([]byte, wasmResult) {
	switch len(rest) {
	case 0:
		buf := make([]byte, pairsSize(m.h))
		marshalPairs(m.h, buf)
		return buf, resultOk
	case 1:
		vals := m.h.Values(lowerASCII(rest[0]))
		if len(vals) == 0 {
			return nil, resultNotFound
		}
		return []byte(strings.Join(vals, ",")), resultOk
	}
	return nil, resultNotFound
}
