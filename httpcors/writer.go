package httpcors

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/s3cors/s3cors/evaluator"
)

// writer applies the Decision's response plan (evaluator.ResponsePlan) to the wrapped
// handler's response headers the moment they are committed (WriteHeader, the first Write,
// Flush or ReadFrom). Unwrap lets http.ResponseController reach the underlying writer's
// features.
type writer struct {
	http.ResponseWriter
	d       *evaluator.Decision
	st      *policyState
	origin  []string               // the request's Origin values, reused as the echoed Allow-Origin
	plan    evaluator.ResponsePlan // d.Response(), a view of d's headers
	applied bool
}

var _ interface {
	http.Flusher
	http.Hijacker
	io.ReaderFrom
} = (*writer)(nil)

// apply edits the header map once: the upstream's own headers first (fixUpstream), then
// S3's headers are set, Vary merged.
func (w *writer) apply() {
	if w.applied || w.d == nil {
		return
	}
	w.applied = true
	pl := &w.plan
	h := w.Header()
	var up []string
	// An empty map (an upstream that set no header) has nothing to strip or merge, and
	// ranging over a map costs more than a few lookups.
	if len(h) > 0 {
		up = fixUpstream(h, pl)
	}
	if !pl.SetsHeaders() {
		return
	}
	if n := w.d.HeaderSet; n >= 0 {
		// The plan's Set and Vary as the policy prepared them (the matched rule's fixed
		// set), then the request's Origin.
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
	// a Forward sets S3's Vary alone, a constant. Anything else is copied as it is.
	for _, hd := range pl.Set {
		if c := constant(hd.Value); c != nil {
			h[hd.Name] = c
		} else {
			h[hd.Name] = []string{strings.Clone(hd.Value)}
		}
	}
	if pl.Vary {
		if len(up) > 0 {
			h[evaluator.HeaderVary] = []string{evaluator.MergeVary(up)}
		} else {
			h[evaluator.HeaderVary] = constant(evaluator.VaryValue)
		}
	}
}

// fixUpstream does step 1 of the plan on the upstream's headers in a single pass, and
// returns the upstream's Vary values. net/http's map is keyed by spelling, so when S3's
// headers are to be set, a spelling other than the canonical one of an Access-Control-*
// header goes too (it would make a second line), and a non-canonical Vary is folded into
// Vary.
func fixUpstream(h http.Header, pl *evaluator.ResponsePlan) []string {
	sets := pl.SetsHeaders()
	for k, vs := range h {
		switch pl.Edit(k) {
		case evaluator.RemoveHeader:
			delete(h, k)
		case evaluator.MergeHeader:
			if k != evaluator.HeaderVary {
				h[evaluator.HeaderVary] = append(h[evaluator.HeaderVary], vs...)
				delete(h, k)
			}
		default:
			if sets && evaluator.IsCORSHeader(k) && http.CanonicalHeaderKey(k) != k {
				delete(h, k)
			}
		}
	}
	return h[evaluator.HeaderVary]
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
