package wasmhost_test

import (
	"context"
	"fmt"

	"github.com/s3cors/s3cors/wasmhost"
)

// A plugin that answers every request itself: New loads it as Envoy would, and the stream's
// first step comes back with the local reply, after the plugin's own response callbacks.
func ExampleNew() {
	ctx := context.Background()
	wasm := wasmhost.GuestForExample("localreply") // a module's bytes, e.g. from os.ReadFile
	h, err := wasmhost.New(ctx, wasmhost.Options{Module: wasm})
	if err != nil {
		fmt.Println(err) // a *wasmhost.LoadError carries Envoy's message
		return
	}
	defer h.Close(ctx)

	s := h.NewStream()
	defer s.Done()
	r := s.RequestHeaders(wasmhost.Headers{
		{":method", "GET"}, {":scheme", "http"}, {":authority", "s3.example.com"}, {":path", "/bucket/key"},
	}, true)
	ct, _ := r.Reply.Headers.Get("content-type")
	fmt.Println(r.Action, r.Reply.Status, ct, string(r.Reply.Body))
	// Output: replied 401 application/json {"error":"unauthorized"}
}
