package httpcors

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/s3cors/s3cors/evaluator"
)

// writer fixes up the wrapped handler's response headers the moment they are committed
// (WriteHeader, the first Write, Flush or ReadFrom): upstream Access-Control-* headers go
// when the Decision says StripUpstream, and S3's headers (a Decorate's, or a Forward's Vary
// under "vary": "always") are set, Vary merged. Unwrap lets http.ResponseController reach the underlying writer's features.
type writer struct {
	http.ResponseWriter
	d       *evaluator.Decision
	st      *policyState
	origin  []string // the request's Origin values, reused as the echoed Allow-Origin
	applied bool
}

var _ interface {
	http.Flusher
	http.Hijacker
	io.ReaderFrom
} = (*writer)(nil)

// apply edits the header map once: the upstream's own headers first (fixUpstream), then
// S3's headers are set.
func (w *writer) apply() {
	if w.applied || w.d == nil {
		return
	}
	w.applied = true
	h := w.Header()
	var up []string
	// An empty map (an upstream that set no header) has nothing to strip or merge, and
	// ranging over a map costs more than a few lookups.
	if len(h) > 0 {
		up = w.fixUpstream(h)
	}
	if !w.d.SetsHeaders() {
		return
	}
	if n := w.d.HeaderSet; n >= 0 {
		// The matched rule's prepared headers, then the request's Origin.
		set := &w.st.fixed[n]
		setFixed(h, set.headers)
		if set.echo {
			h[evaluator.HeaderAllowOrigin] = w.origin[:1:1]
		}
		if len(up) > 0 {
			h[evaluator.HeaderVary] = []string{evaluator.MergeVary(up)}
		}
		return
	}
	// A Decorate decision always has a rule, and so a fixed set (evaluator's TestFixedHeaders);
	// a Forward's only header is S3's Vary, a constant. Anything else is copied as it is.
	for _, hd := range w.d.Headers {
		switch c := constant(hd.Value); {
		case hd.Name == evaluator.HeaderVary && len(up) > 0:
			h[hd.Name] = []string{evaluator.MergeVary(up)}
		case c != nil:
			h[hd.Name] = c
		default:
			h[hd.Name] = []string{strings.Clone(hd.Value)}
		}
	}
}

// fixUpstream edits the upstream's headers in a single pass: its Access-Control-* headers go
// when StripUpstream, and when S3's headers are to be set any spelling of a name S3 sets
// other than the canonical one goes too (it would make a second line); a non-canonical Vary
// is folded into Vary. It returns the upstream's Vary values.
func (w *writer) fixUpstream(h http.Header) []string {
	decorate := w.d.SetsHeaders()
	for k, vs := range h {
		switch {
		case w.d.StripUpstream && evaluator.IsCORSHeader(k):
			delete(h, k)
		case !decorate || http.CanonicalHeaderKey(k) == k:
		case equalFold(k, "Vary"):
			h["Vary"] = append(h["Vary"], vs...)
			delete(h, k)
		case evaluator.IsCORSHeader(k):
			delete(h, k)
		}
	}
	return h["Vary"]
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// WriteHeader applies the CORS headers before the status line is committed. Informational
// statuses (1xx) leave the final headers open.
func (w *writer) WriteHeader(status int) {
	if status >= 200 || status == http.StatusSwitchingProtocols {
		w.apply()
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *writer) Write(b []byte) (int, error) {
	w.apply()
	return w.ResponseWriter.Write(b)
}

// Flush commits the headers, so it applies them first.
func (w *writer) Flush() {
	w.apply()
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack hands the connection over; whatever the handler writes from then on is its own.
func (w *writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// ReadFrom keeps net/http's sendfile path for handlers that io.Copy files into the response.
func (w *writer) ReadFrom(r io.Reader) (int64, error) {
	w.apply()
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
}

// Unwrap is for http.ResponseController.
func (w *writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }
