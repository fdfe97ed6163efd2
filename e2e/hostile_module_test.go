package e2e_test

import (
	"context"
	"testing"

	"github.com/s3cors/s3cors/wasmhost"
)

// TestHostileModuleHeader: a module of a few bytes must cost a few bytes to refuse, whatever
// counts its header claims. The module below (found by FuzzParseModule, kept in
// wasmhost/testdata/fuzz/FuzzParseModule/e645fabc21e49c65) declares 100 million function types
// in a 20-byte file; a loader that sizes its tables by the claim before reading them allocates
// gigabytes, which is what killed the fuzzing worker.
func TestHostileModuleHeader(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation bounds do not hold under the race detector, which allocates for itself")
	}
	module := []byte("\x00asm\x01\x00\x00\x00\x01\x04\xe7\x89\xc6/\x83\xfb0000")
	per := allocatedPerCall(t, 3, func() {
		h, err := wasmhost.New(context.Background(), wasmhost.Options{Module: module})
		if err == nil {
			_ = h.Close(context.Background())
			t.Fatal("a corrupt module was accepted")
		}
	})
	if per > 1<<20 {
		t.Errorf("refusing a %d-byte module allocated %d bytes", len(module), per)
	}
}
