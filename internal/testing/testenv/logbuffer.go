package testenv

import "log/slog"

// BufferLogger returns a text logger at level writing into a new SyncBuffer.
func BufferLogger(level slog.Level) (*slog.Logger, *SyncBuffer) {
	buf := &SyncBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: level})), buf
}
