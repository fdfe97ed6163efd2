package e2e_test

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/casetable"
	"github.com/s3cors/s3cors/internal/testenv"
)

// TestRealEnvoyImage runs every case table through each pinned real Envoy with the wasm
// filter configured by the table's policy image: raw, as a google.protobuf.BytesValue (Envoy
// hands its bytes to the module unchanged), and wrapped in JSON as a StringValue (what
// Istio's pluginConfig becomes).
func TestRealEnvoyImage(t *testing.T) {
	for _, e := range testenv.Envoys(t) {
		t.Run(e.Version, func(t *testing.T) {
			tables := realEnvoyTables(t)
			store := startRealEnvoyStore(t, tables)
			for form, config := range map[string]func(casetable.Table) proto.Message{
				"bytes": func(tb casetable.Table) proto.Message { return wrapperspb.Bytes(stressImage(t, tb.Config)) },
				"wrapped": func(tb casetable.Table) proto.Message {
					return wrapperspb.String(string(evaluator.WrapImage(stressImage(t, tb.Config))))
				},
			} {
				t.Run(form, func(t *testing.T) {
					boot := realEnvoyBootstrapWith(t, "wasm.yaml", tables, store.addr, testenv.Module(t), nil, config)
					env := startRealEnvoy(t, e.Path, boot)
					runTablesThroughEnvoy(t, "image-"+form, env, tables, store, nil)
				})
			}
		})
	}
}
