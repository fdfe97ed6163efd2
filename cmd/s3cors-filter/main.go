// Command s3cors-filter is build/s3cors.wasm, the s3cors proxy-wasm filter for Envoy >= 1.33
// and Istio >= 1.25. Build it as a WASI reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o build/s3cors.wasm ./cmd/s3cors-filter
//
// Envoy runs the module's _initialize (this package's init) and then only its exported
// callbacks; main is never called.
//
// Where it sits: the module's main only: it registers the filter package's plugin with
// filter/abi and holds no logic of its own.
package main

import (
	"github.com/s3cors/s3cors/filter"
	"github.com/s3cors/s3cors/filter/abi"
)

func init() {
	// No host call here but proxy_log is allowed while the module initialises; Register and
	// New make none.
	abi.Register(filter.New(abi.ProxyHost()))
}

func main() {}
