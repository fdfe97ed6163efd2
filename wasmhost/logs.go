package wasmhost

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// LogSource says where a log line came from.
type LogSource string

const (
	// SourceProxyLog is a guest's proxy_log call.
	SourceProxyLog LogSource = "proxy_log"
	// SourceStdout and SourceStderr are guest fd_write calls to fd 1 and 2 (one line per call).
	SourceStdout LogSource = "stdout"
	SourceStderr LogSource = "stderr"
	// SourceHost is the host itself: load and link failures, traps, policy decisions.
	SourceHost LogSource = "host"
)

// LogEntry is one recorded log line.
type LogEntry struct {
	Time    time.Time
	Level   LogLevel
	Source  LogSource
	VM      string // "base", "canary", "worker 0", ...
	Message string
}

// String renders the entry like Envoy's log line body: "wasm log: <message>" for guest output,
// the message itself for the host's own lines.
func (e LogEntry) String() string {
	if e.Source == SourceHost {
		return fmt.Sprintf("[%s] [%s] %s", e.Level, e.VM, e.Message)
	}
	return fmt.Sprintf("[%s] [%s] wasm log: %s", e.Level, e.VM, e.Message)
}

// logRing keeps the most recent entries.
type logRing struct {
	mu      sync.Mutex
	entries []LogEntry
	next    int
	full    bool
}

func newLogRing(capacity int) *logRing { return &logRing{entries: make([]LogEntry, capacity)} }

func (r *logRing) add(e LogEntry) {
	r.mu.Lock()
	r.entries[r.next] = e
	r.next++
	if r.next == len(r.entries) {
		r.next, r.full = 0, true
	}
	r.mu.Unlock()
}

func (r *logRing) snapshot() []LogEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.full {
		return append([]LogEntry(nil), r.entries[:r.next]...)
	}
	out := make([]LogEntry, 0, len(r.entries))
	out = append(out, r.entries[r.next:]...)
	return append(out, r.entries[:r.next]...)
}

// guestLog records a guest line if it passes the wasm logger level, as Envoy's ENVOY_LOG does.
func (h *Host) guestLog(level LogLevel, src LogSource, v *vm, msg string) {
	if level < h.opts.LogLevel {
		return
	}
	h.record(LogEntry{Time: time.Now(), Level: level, Source: src, VM: v.label, Message: msg})
}

// logf records a host line.
func (h *Host) logf(level LogLevel, src LogSource, vmLabel, format string, args ...any) {
	if level < h.opts.LogLevel {
		return
	}
	h.record(LogEntry{Time: time.Now(), Level: level, Source: src, VM: vmLabel, Message: fmt.Sprintf(format, args...)})
}

func (h *Host) record(e LogEntry) {
	h.logs.add(e)
	if l := h.opts.Logger; l != nil {
		l.LogAttrs(context.Background(), e.Level.slog(), e.Message,
			slog.String("source", string(e.Source)), slog.String("vm", e.VM))
	}
}

// Logs returns the recorded log lines, oldest first (at most Options.LogCapacity of them).
func (h *Host) Logs() []LogEntry { return h.logs.snapshot() }
