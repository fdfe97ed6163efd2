package wasmhost

import (
	"fmt"
	"testing"

	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// GuestForExample returns a test guest from testdata/guests, built as the tests build it, for
// examples, which have no testing.TB of their own; a failure panics, failing the example.
func GuestForExample(name string) []byte { return testenv.GuestBytes(exampleTB{}, name) }

// exampleTB is the part of testing.TB the build helpers use.
type exampleTB struct{ testing.TB }

func (exampleTB) Helper()                      {}
func (exampleTB) Fatal(args ...any)            { panic(fmt.Sprint(args...)) }
func (exampleTB) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }
