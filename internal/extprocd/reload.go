package extprocd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/extproc"
)

// Reasons a reload is refused, the "reason" label of s3cors_config_reload_errors_total.
const (
	reloadInvalid    = "invalid"    // the new file does not parse or validate
	reloadUnreadable = "unreadable" // the file exists but cannot be read
	reloadMissing    = "missing"    // the file is gone
)

// defaultDebounce is how long the watcher waits for a burst of file events to settle before
// reading the file: editors and Kubernetes' ConfigMap updates produce several events for one
// change, and reading in the middle of them could see a file half written.
const defaultDebounce = 100 * time.Millisecond

// reloader re-reads the configuration file and swaps the live policy. Reloads are
// serialised; a file identical (by hash) to the live one changes nothing.
type reloader struct {
	path     string
	holder   *extproc.PolicyHolder
	metrics  *Metrics
	log      *slog.Logger
	debounce time.Duration
	// onResult, when set (tests), is told the outcome of every reload.
	onResult func(ReloadResult)
	// onWatching, when set (tests), is called once the watch is in place.
	onWatching func()

	mu      sync.Mutex
	missing bool // the file was gone at the last attempt; logged once per disappearance
}

// ReloadResult is the outcome of one reload attempt.
type ReloadResult struct {
	// Trigger is what asked for the reload ("SIGHUP", "file change"), as logged.
	Trigger string
	// Swapped says a new configuration is live. A file identical to the live one swaps
	// nothing and is no error.
	Swapped bool
	// Refused is "" or why the file was refused, as in s3cors_config_reload_errors_total:
	// "invalid", "unreadable" or "missing". The last good configuration stays live.
	Refused string
	// Err is the cause of a refusal.
	Err error
}

func (r *reloader) reload(ctx context.Context, trigger string) ReloadResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := r.reloadLocked(ctx, trigger)
	if r.onResult != nil {
		r.onResult(res)
	}
	return res
}

func (r *reloader) reloadLocked(ctx context.Context, trigger string) ReloadResult {
	live := r.holder.Load()
	liveHash := ""
	if live != nil {
		liveHash = live.Hash
	}
	data, err := os.ReadFile(r.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.metrics.reloadFailed(reloadMissing)
		if !r.missing {
			r.missing = true
			r.log.LogAttrs(ctx, slog.LevelWarn, "configuration file is gone; keeping the last good configuration",
				slog.String("file", r.path), slog.String("live_hash", liveHash), slog.String("trigger", trigger))
		}
		return ReloadResult{Trigger: trigger, Refused: reloadMissing, Err: err}
	case err != nil:
		r.metrics.reloadFailed(reloadUnreadable)
		r.log.LogAttrs(ctx, slog.LevelError, "configuration file unreadable; keeping the last good configuration",
			slog.String("file", r.path), slog.String("live_hash", liveHash), slog.String("trigger", trigger),
			slog.String("error", err.Error()))
		return ReloadResult{Trigger: trigger, Refused: reloadUnreadable, Err: err}
	}
	r.missing = false

	sum := sha256.Sum256(data)
	if hash := "sha256:" + hex.EncodeToString(sum[:]); hash == liveHash {
		// Spurious events (a touch, the other files of a ConfigMap) and a return to the live
		// file after a refused edit land here.
		r.metrics.lastReloadOK.Set(1)
		r.log.LogAttrs(ctx, slog.LevelDebug, "configuration file unchanged",
			slog.String("file", r.path), slog.String("hash", hash), slog.String("trigger", trigger))
		return ReloadResult{Trigger: trigger}
	}

	p, err := extproc.LoadConfig(r.path, data)
	if err != nil {
		r.metrics.reloadFailed(reloadInvalid)
		attrs := appendLoadError([]slog.Attr{
			slog.String("file", r.path), slog.String("live_hash", liveHash), slog.String("trigger", trigger),
		}, err)
		r.log.LogAttrs(ctx, slog.LevelError, "configuration reload refused; keeping the last good configuration", attrs...)
		return ReloadResult{Trigger: trigger, Refused: reloadInvalid, Err: err}
	}
	r.holder.Store(p)
	r.metrics.configLoaded(p, true)
	r.log.LogAttrs(ctx, slog.LevelInfo, "configuration reloaded",
		slog.String("file", r.path), slog.String("hash", p.Hash), slog.String("previous_hash", liveHash),
		slog.String("trigger", trigger))
	return ReloadResult{Trigger: trigger, Swapped: true}
}

// watch reloads on every change to the file until ctx ends. It watches the directory, not the
// file, so that it survives editors' rename-replace (the file's inode changes) and
// Kubernetes' ConfigMap updates (the "..data" symlink is swapped to a new directory); when the
// path is a symlink, the directory of its target is watched as well. It returns an error only
// when no watch could be set up at all.
func (r *reloader) watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer func() { _ = w.Close() }()

	abs, err := filepath.Abs(r.path)
	if err != nil {
		return err
	}
	watched := map[string]bool{}
	names := map[string]bool{}
	rewatch := func() error {
		dirs := []string{filepath.Dir(abs)}
		names[filepath.Base(abs)] = true
		names["..data"] = true // Kubernetes' atomic writer swaps this symlink
		if target, err := filepath.EvalSymlinks(abs); err == nil && target != abs {
			dirs = append(dirs, filepath.Dir(target))
			names[filepath.Base(target)] = true
		}
		var firstErr error
		for _, d := range dirs {
			if watched[d] {
				continue
			}
			if err := w.Add(d); err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			watched[d] = true
		}
		return firstErr
	}
	if err := rewatch(); err != nil && len(watched) == 0 {
		return err
	}
	if r.onWatching != nil {
		r.onWatching()
	}

	debounce := r.debounce
	if debounce <= 0 {
		debounce = defaultDebounce
	}
	timer := time.NewTimer(debounce)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if (ev.Op&fsnotify.Remove != 0 || ev.Op&fsnotify.Rename != 0) && watched[ev.Name] {
				// A watched directory itself went away (an old ConfigMap generation).
				delete(watched, ev.Name)
			}
			if ev.Op == fsnotify.Chmod || !names[filepath.Base(ev.Name)] {
				continue
			}
			timer.Reset(debounce)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			r.log.LogAttrs(ctx, slog.LevelWarn, "configuration file watch error", slog.String("file", r.path), slog.String("error", err.Error()))
		case <-timer.C:
			r.reload(ctx, "file change")
			if err := rewatch(); err != nil {
				r.log.LogAttrs(ctx, slog.LevelWarn, "cannot watch configuration directory", slog.String("file", r.path), slog.String("error", err.Error()))
			}
		}
	}
}

// appendLoadError appends to attrs how a configuration that does not load is logged: a
// validation error as its list of problems ("problems", a list in JSON logs), once; anything
// else (a syntax error, an unreadable file) as the error. The reload refusal and the startup
// failure share it, so one log query finds both.
func appendLoadError(attrs []slog.Attr, err error) []slog.Attr {
	if ve := (*evaluator.ValidationError)(nil); errors.As(err, &ve) {
		problems := make(problemList, len(ve.Problems))
		for i, p := range ve.Problems {
			problems[i] = p.String()
		}
		return append(attrs, slog.Any("problems", problems))
	}
	return append(attrs, slog.String("error", err.Error()))
}

// problemList is a configuration's problems in a log record: a JSON array in JSON logs, and in
// text logs the problems joined by "; " (slog's text handler would print Go's "[a b]", where
// the problems, which contain spaces, run into each other).
type problemList []string

func (l problemList) MarshalJSON() ([]byte, error) { return json.Marshal([]string(l)) }

func (l problemList) MarshalText() ([]byte, error) { return []byte(strings.Join(l, "; ")), nil }
