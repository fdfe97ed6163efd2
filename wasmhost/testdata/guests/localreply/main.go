// Command localreply is a host test guest for local replies. On request headers it sends a
// 401 with its own content-type and returns Continue (Envoy must stop anyway); in
// on_response_headers it sees and changes its own reply; with x-twice it sends a second reply
// from there.
package main

import (
	"strconv"
	"strings"

	abi "github.com/s3cors/s3cors/wasmhost/testdata/guestabi"
)

func main() {}

//go:wasmexport proxy_abi_version_0_2_1
func abiVersion() {}

//go:wasmexport proxy_on_memory_allocate
func onMemoryAllocate(size uint32) *byte { return abi.Alloc(size) }

var twice = map[uint32]bool{}

//go:wasmexport proxy_on_request_headers
func onRequestHeaders(id, n, eos uint32) uint32 {
	_, r := abi.GetHeader(abi.RequestHeaders, "x-twice")
	twice[id] = r == 0
	st := abi.SendLocalResponse(401, "not allowed here", `{"error":"unauthorized"}`,
		[][2]string{{"Content-Type", "application/json"}, {"X-A", "1"}, {"www-authenticate", "Basic"}}, -1)
	abi.Log(2, "localreply sent status="+strconv.Itoa(int(st)))
	return 0
}

//go:wasmexport proxy_on_request_body
func onRequestBody(id, size, eos uint32) uint32 {
	abi.Log(2, "localreply request_body (must not happen)")
	return 0
}

//go:wasmexport proxy_on_response_headers
func onResponseHeaders(id, n, eos uint32) uint32 {
	pairs, _, _ := abi.Pairs(abi.ResponseHeaders)
	var hs []string
	for _, h := range pairs {
		hs = append(hs, h[0]+"="+h[1])
	}
	abi.Log(2, "localreply response_headers n="+strconv.Itoa(int(n))+" eos="+strconv.Itoa(int(eos))+" headers="+strings.Join(hs, ","))
	abi.AddHeader(abi.ResponseHeaders, "x-own-reply", "seen")
	if twice[id] {
		st := abi.SendLocalResponse(500, "second", "second reply", nil, -1)
		abi.Log(2, "localreply second status="+strconv.Itoa(int(st)))
	}
	return 0
}

//go:wasmexport proxy_on_response_body
func onResponseBody(id, size, eos uint32) uint32 {
	body, _ := abi.GetBuffer(abi.ResponseBody, 0, size)
	abi.Log(2, "localreply response_body size="+strconv.Itoa(int(size))+" eos="+strconv.Itoa(int(eos))+" body="+string(body))
	return 0
}

//go:wasmexport proxy_on_log
func onLog(id uint32) { abi.Log(2, "localreply log id="+strconv.Itoa(int(id))) }

//go:wasmexport proxy_on_done
func onDone(id uint32) uint32 {
	abi.Log(2, "localreply done id="+strconv.Itoa(int(id)))
	return 1
}

//go:wasmexport proxy_on_delete
func onDelete(id uint32) {
	delete(twice, id)
	abi.Log(2, "localreply delete id="+strconv.Itoa(int(id)))
}
