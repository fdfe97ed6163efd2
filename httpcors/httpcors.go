// Package httpcors is Amazon S3's bucket CORS as net/http middleware, for Go servers that
// speak the S3 API and want S3-exact CORS without a proxy in front: preflights are answered
// exactly as S3 answers them (status, headers, XML errors), actual responses are decorated,
// and everything that is not a bucket request is left alone. The decisions are the
// evaluator's, the same ones the Envoy filter and the ext_proc server make.
//
//	m, err := httpcors.Load(configJSON)
//	if err != nil { ... }                      // every problem, with its path
//	http.ListenAndServe(addr, m.Handler(s3API))
//
// The handler never refuses an actual request; it only adds (and, under the default
// upstreamCORSHeaders "strip", removes) Access-Control-* headers and merges Vary, at the
// moment the wrapped handler writes its header.
package httpcors

import (
	"net/http"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/s3cors/s3cors/evaluator"
)

// Middleware applies one compiled policy to HTTP requests. Its policy can be replaced at
// any time (SetPolicy), for configuration reloads; requests in flight keep the one they
// started with. Safe for concurrent use.
type Middleware struct {
	state atomic.Pointer[policyState]
	pool  sync.Pool // *exchange
}

// policyState is a policy plus the header-value slices it can produce, built once so that
// setting a header costs no allocation on the request path. They are keyed by the value's
// memory (the policy hands out the same strings every time), which is cheaper to hash than
// the text.
type policyState struct {
	policy *evaluator.Policy
	values map[stringKey][]string
}

type stringKey struct {
	p *byte
	n int
}

func keyOf(s string) stringKey { return stringKey{unsafe.StringData(s), len(s)} }

// New returns middleware for a compiled policy.
func New(p *evaluator.Policy) *Middleware {
	m := &Middleware{}
	m.pool.New = func() any { return new(exchange) }
	m.SetPolicy(p)
	return m
}

// Load parses, validates and compiles a configuration document (see evaluator.Load) and
// returns middleware for it. The error lists every problem with its path.
func Load(config []byte) (*Middleware, error) {
	p, err := evaluator.Load(config)
	if err != nil {
		return nil, err
	}
	return New(p), nil
}

// Policy returns the policy in force.
func (m *Middleware) Policy() *evaluator.Policy { return m.state.Load().policy }

// SetPolicy replaces the policy atomically; a nil policy is ignored (the old one stays).
func (m *Middleware) SetPolicy(p *evaluator.Policy) {
	if p == nil {
		return
	}
	st := &policyState{policy: p, values: map[stringKey][]string{}}
	for _, v := range p.HeaderValues() {
		st.values[keyOf(v)] = []string{v}
	}
	m.state.Store(st)
}

// constant header values; slices with len == cap, so that an append by anyone copies
// instead of writing into them.
var (
	valStar  = []string{"*"}
	valTrue  = []string{"true"}
	valZero  = []string{"0"}
	valVary  = []string{evaluator.VaryValue}
	valXML   = []string{"application/xml"}
	valClose = []string{"close"}
)

// exchange is the per-request state, pooled: the evaluator's Decision and the wrapper
// around the ResponseWriter.
type exchange struct {
	req evaluator.Request
	d   evaluator.Decision
	w   writer
}

// Handler wraps next: preflights to a bucket are answered here, other bucket requests reach
// next with their response headers fixed up as S3 would send them, and anything else
// reaches next untouched.
func (m *Middleware) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := m.state.Load()
		x := m.pool.Get().(*exchange)
		defer m.pool.Put(x)
		fill(&x.req, r)
		d := &x.d
		st.policy.Evaluate(&x.req, d)
		switch {
		case d.Outcome == evaluator.PassThrough:
			next.ServeHTTP(w, r)
		case d.Outcome == evaluator.Reply:
			reply(w, r, d, st)
		case d.Outcome == evaluator.Forward && !d.StripUpstream:
			next.ServeHTTP(w, r)
		default:
			x.w = writer{ResponseWriter: w, d: d, st: st, origin: r.Header["Origin"]}
			next.ServeHTTP(&x.w, r)
			// A handler that writes nothing gets net/http's implicit 200 after it returns;
			// its headers must be fixed up first.
			x.w.apply()
			x.w = writer{}
		}
	})
}

// fill reads what the evaluator needs from r without allocating: canonical header keys are
// looked up directly, as net/http stores them.
func fill(q *evaluator.Request, r *http.Request) {
	q.Method = r.Method
	q.Authority = r.Host
	q.Path = r.RequestURI
	if q.Path == "" || q.Path[0] != '/' {
		// A client-side request, or an absolute-form target from a forward proxy client.
		q.Path = r.URL.RequestURI()
	}
	q.Origin, q.HasOrigin = first(r.Header["Origin"])
	q.RequestMethod, q.HasRequestMethod = first(r.Header["Access-Control-Request-Method"])
	q.RequestHeaders, q.HasRequestHeaders = first(r.Header["Access-Control-Request-Headers"])
}

func first(vs []string) (string, bool) {
	if len(vs) == 0 {
		return "", false
	}
	return vs[0], true
}

// replyMemory holds the header values of one reply that cannot come from a constant: the
// ids and the Allow-Headers echo. One allocation per reply; see reply.
type replyMemory struct {
	vals [4]string
	buf  [160]byte
}

// reply writes the evaluator's answer to a preflight. Values that point into the Decision's
// buffers are copied into fresh memory first: net/http snapshots the header map at
// WriteHeader and serialises it after the handler returns, when the pooled Decision may
// already serve another request.
func reply(w http.ResponseWriter, r *http.Request, d *evaluator.Decision, st *policyState) {
	h := w.Header()
	var mem *replyMemory
	var spill []byte
	used, nv := 0, 0
	for _, hd := range d.Headers {
		name := hd.Name
		switch name {
		case evaluator.HeaderRequestID:
			name = "X-Amz-Request-Id"
		case evaluator.HeaderID2:
			name = "X-Amz-Id-2"
		}
		if v, ok := constant(hd, r, st); ok {
			h[name] = v
			continue
		}
		if mem == nil {
			mem = new(replyMemory)
		}
		var v string
		if used+len(hd.Value) <= len(mem.buf) {
			n := copy(mem.buf[used:], hd.Value)
			v = unsafe.String(&mem.buf[used], n)
			used += n
		} else {
			spill = []byte(hd.Value) // a long Allow-Headers echo
			v = unsafe.String(unsafe.SliceData(spill), len(spill))
		}
		if v == "" {
			h[name] = []string{""}
			continue
		}
		if nv < len(mem.vals) {
			mem.vals[nv] = v
			h[name] = mem.vals[nv : nv+1 : nv+1]
			nv++
		} else {
			h[name] = []string{v}
		}
	}
	w.WriteHeader(d.Status)
	if len(d.Body) > 0 {
		// The client has gone if this fails; there is nobody left to tell.
		_, _ = w.Write(d.Body)
	}
}

// constant returns a []string that already holds hd's value and that nobody mutates: the
// request's own Origin slice, a package constant, or one of the policy's precomputed values.
func constant(hd evaluator.Header, r *http.Request, st *policyState) ([]string, bool) {
	switch hd.Name {
	case evaluator.HeaderAllowOrigin:
		if hd.Value == "*" {
			return valStar, true
		}
		if o := r.Header["Origin"]; len(o) > 0 && o[0] == hd.Value {
			return o[:1:1], true
		}
	case evaluator.HeaderAllowCredentials:
		return valTrue, true
	case evaluator.HeaderVary:
		if hd.Value == evaluator.VaryValue {
			return valVary, true
		}
	case evaluator.HeaderContentLength:
		if hd.Value == "0" {
			return valZero, true
		}
	case evaluator.HeaderContentType:
		if hd.Value == "application/xml" {
			return valXML, true
		}
	case evaluator.HeaderConnection:
		if hd.Value == "close" {
			return valClose, true
		}
	case evaluator.HeaderAllowMethods, evaluator.HeaderExposeHeaders, evaluator.HeaderMaxAge:
		if v, ok := st.values[keyOf(hd.Value)]; ok {
			return v, true
		}
	}
	return nil, false
}
