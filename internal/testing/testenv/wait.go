package testenv

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// progressDeadline bounds Eventually's wait for something that must happen (a reconnection, a
// reload, a count going back to zero). It guards against a hang; no test asserts how long
// anything took.
const progressDeadline = 60 * time.Second

// Eventually polls cond until it holds, failing t if it still does not after a generous bound.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(progressDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not the case after %v", what, progressDeadline)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// SyncBuffer is an io.Writer (a log sink, a command's output) that servers write while the
// test reads it. The zero value is ready to use.
type SyncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	written chan struct{}
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.b.Write(p)
	if s.written != nil {
		select {
		case s.written <- struct{}{}:
		default:
		}
	}
	return n, err
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Written returns a channel that receives after each write (writes in a burst may share one
// receive): read String again when it does.
func (s *SyncBuffer) Written() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.written == nil {
		s.written = make(chan struct{}, 1)
	}
	return s.written
}
