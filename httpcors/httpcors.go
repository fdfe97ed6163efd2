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
// The handler never refuses an actual request; it only applies the evaluator's response plan
// (evaluator.Decision.Response: under the default upstreamCORSHeaders "strip", remove the
// wrapped handler's Access-Control-* headers; set S3's; merge Vary) at the moment the wrapped
// handler writes its header.
//
// Where it sits: httpcors is an adapter, like the proxy-wasm filter and extproc. It imports
// the evaluator and the standard library only, never another adapter; nothing in this
// repository imports it but its tests.
//
// # Memory
//
// A request allocates only what net/http keeps after the handler returns. Fixed headers are
// prepared once per policy. A reply's ids and Allow-Headers echo must outlive the pooled
// Decision, so they are copied into append-only chunks (see replyMemory): ordinary Go memory
// the collector scans, well under one allocation per reply on average; merging a wrapped
// handler's Vary costs two (TestRequestsAllocateAtMostThree). A reply's Content-Length: 0 is
// left to net/http, which frames a bodiless reply that way on HTTP/1.1 and HTTP/2; setting it
// too would turn the header map from its small form into a hashed table.
package httpcors

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

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
// setting a header costs no allocation on the request path.
type policyState struct {
	policy *evaluator.Policy
	fixed  []fixedSet // by Decision.HeaderSet
}

// fixedSet is one of the policy's fixed header sets (evaluator.Policy.FixedHeaders) ready
// for a header map: a matched rule's headers are these plus the request's own values.
type fixedSet struct {
	headers []fixedHeader
	echo    bool // Allow-Origin is the request's Origin (the set holds no Allow-Origin "*")
}

type fixedHeader struct {
	key   string
	value []string // len == cap
}

// setFixed assigns prepared headers; a function of its own, so that the loop keeps its few
// values in registers across the map calls.
func setFixed(h http.Header, fixed []fixedHeader) {
	for i := range fixed {
		h[fixed[i].key] = fixed[i].value
	}
}

func newFixedSets(p *evaluator.Policy) []fixedSet {
	sets := make([]fixedSet, p.FixedHeaderSets())
	for n := range sets {
		set := fixedSet{echo: true}
		for _, hd := range p.FixedHeaders(n) {
			v := []string{hd.Value} // len == cap: an append by anyone copies
			if hd.Name == evaluator.HeaderAllowOrigin {
				set.echo = false
			}
			set.headers = append(set.headers, fixedHeader{hd.Name, v})
		}
		sets[n] = set
	}
	return sets
}

// New returns middleware for a compiled policy.
func New(p *evaluator.Policy) *Middleware {
	m := &Middleware{}
	m.pool.New = func() any {
		x := new(exchange)
		x.w.d = &x.d // for the exchange's whole life
		return x
	}
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
	m.state.Store(&policyState{policy: p, fixed: newFixedSets(p)})
}

// Header names as net/http's header map holds them (canonical form), so that headers are
// set by direct map assignment rather than through Header().Set, which canonicalises the key
// on every call. The evaluator's names are already canonical except S3's two ids.
const (
	keyRequestID = "X-Amz-Request-Id"
	keyID2       = "X-Amz-Id-2"
)

// The fixed values of an error reply, as slices with len == cap, so that an append by anyone
// copies instead of writing into them.
var constants = [][]string{{"application/xml"}, {"close"}, {evaluator.VaryValue}}

// constant returns the slice of constants holding v, or nil.
func constant(v string) []string {
	for _, c := range constants {
		if c[0] == v {
			return c
		}
	}
	return nil
}

// exchange is the per-request state, pooled: the evaluator's Decision, the wrapper around
// the ResponseWriter, and the memory replies take their header values from.
type exchange struct {
	d   evaluator.Decision
	w   writer
	mem replyMemory
}

// handler is what Handler returns: a plain struct, so that a request costs one method call
// and no closure.
type handler struct {
	m    *Middleware
	next http.Handler
}

// Handler wraps next: preflights to a bucket are answered here, other bucket requests reach
// next with their response headers fixed up as S3 would send them, and anything else
// reaches next untouched.
func (m *Middleware) Handler(next http.Handler) http.Handler {
	return &handler{m: m, next: next}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := h.m.state.Load()
	x := h.m.pool.Get().(*exchange)
	origin := r.Header["Origin"]
	// The Request stays on the stack (Evaluate keeps none of it but its strings), and is
	// returned by value: filling it costs no write barrier.
	q := requestOf(r, origin)
	d := &x.d
	st.policy.Evaluate(&q, d)
	if d.Outcome == evaluator.Reply {
		x.reply(w, origin, st)
		h.m.pool.Put(x)
		return
	}
	// The plan is built once per request, here, and kept for apply.
	if pl := d.Response(); !pl.Changes() {
		// Nothing to change in the response: the exchange can serve another request while
		// next runs, however long that takes.
		h.m.pool.Put(x)
		h.next.ServeHTTP(w, r)
	} else {
		x.w.ResponseWriter, x.w.st, x.w.origin, x.w.plan, x.w.applied = w, st, origin, pl, false
		h.next.ServeHTTP(&x.w, r)
		// A handler that writes nothing gets net/http's implicit 200 after it returns;
		// its headers must be fixed up first.
		x.w.apply()
		// Hold on to nothing of this request while pooled.
		x.w.ResponseWriter, x.w.origin = nil, nil
		h.m.pool.Put(x)
		// A handler that panics never gets here: its exchange is left to the garbage
		// collector, which is all a deferred Put would buy back.
	}
}

// requestOf reads what the evaluator needs from r without allocating: canonical header keys
// are looked up directly, as net/http stores them, and the Origin values come from the
// caller, which keeps them to echo.
func requestOf(r *http.Request, origin []string) (q evaluator.Request) {
	q.Method = r.Method
	q.Authority = r.Host
	q.Path = r.RequestURI
	if q.Path == "" || q.Path[0] != '/' {
		// A client-side request, or an absolute-form target from a forward proxy client:
		// net/http took r.Host from the target and dropped the Host line, so the handler
		// can read no other host than the evaluator does.
		q.Path = r.URL.RequestURI()
	}
	q.Origin, q.HasOrigin = first(origin)
	q.RequestMethod, q.HasRequestMethod = first(r.Header["Access-Control-Request-Method"])
	q.RequestHeaders, q.HasRequestHeaders = first(r.Header["Access-Control-Request-Headers"])
	q.ForwardedHost, q.HasForwardedHost = joined(r.Header["X-Forwarded-Host"])
	q.Forwarded, q.HasForwarded = joined(r.Header["Forwarded"])
	return q
}

// joined returns a repeated header's values joined by ",", allocating only when it repeats.
func joined(vs []string) (string, bool) {
	switch len(vs) {
	case 0:
		return "", false
	case 1:
		return vs[0], true
	}
	return strings.Join(vs, ","), true
}

func first(vs []string) (string, bool) {
	if len(vs) == 0 {
		return "", false
	}
	return vs[0], true
}

// reply writes the evaluator's answer to a preflight. Every value is one nobody mutates (a
// constant, a policy value, the request's own Origin slice) or a copy (replyMemory): net/http
// snapshots the header map at WriteHeader and serialises it after the handler returns, when
// the pooled Decision may already serve another request.
func (x *exchange) reply(w http.ResponseWriter, origin []string, st *policyState) {
	h := w.Header()
	d := &x.d
	if d.HeaderSet >= 0 {
		// An allowed preflight: the rule's prepared headers, then the request's values.
		// Content-Length: 0 is left to the server (see below).
		set := &st.fixed[d.HeaderSet]
		setFixed(h, set.headers)
		if set.echo {
			h[evaluator.HeaderAllowOrigin] = origin[:1:1]
		}
		ah := d.AllowHeaders()
		rid, hid, ahv := x.mem.values(d.RequestID(), d.HostID(), ah)
		h[keyRequestID], h[keyID2] = rid, hid
		if ah != "" {
			h[evaluator.HeaderAllowHeaders] = ahv
		}
		w.WriteHeader(d.Status)
		return
	}
	// An error reply (or, should the evaluator ever answer so, another reply without a
	// rule): the ids, copied together, Content-Type and Connection from the constants.
	rid, hid, _ := x.mem.values(d.RequestID(), d.HostID(), "")
	for _, hd := range d.Headers {
		switch hd.Name {
		case evaluator.HeaderRequestID:
			h[keyRequestID] = rid
		case evaluator.HeaderID2:
			h[keyID2] = hid
		case evaluator.HeaderContentLength:
			// Framing is the server's: net/http (HTTP/1.1 and HTTP/2) sends the length of
			// what was written, Content-Length: 0 for a reply that wrote no body, and one
			// entry fewer keeps the header map in its small form (package comment, Memory).
		default:
			v := constant(hd.Value)
			if v == nil {
				v = []string{strings.Clone(hd.Value)} // not reached today; the copy outlives the Decision
			}
			h[hd.Name] = v
		}
	}
	w.WriteHeader(d.Status)
	if len(d.Body) > 0 {
		// The writer copies the body before Write returns, so the Decision's buffer can be
		// reused. The client has gone if this fails; there is nobody left to tell.
		_, _ = w.Write(d.Body)
	}
}

// replyMemory hands out the header values of replies that live in the Decision's reusable
// buffers (the ids and the Allow-Headers echo) as copies that nobody rewrites: net/http keeps
// the header map, and serialises it, after the handler returns, when the pooled Decision may
// already serve another request. Rather than two allocations per reply, each exchange copies
// values into a strings.Builder that it only ever appends to, and takes their []string from an
// array it only ever advances through; a full one is replaced, and the collector frees it once
// no header map refers into it. A value retained beyond its response keeps its whole chunk
// (about 5.5 KB) alive. All of it is ordinary Go memory: strings and slices the collector sees.
//
// Every pointer stored in a heap object costs a write barrier while the collector marks, so
// a reply stores as few as it can: its bytes go to the Builder in one Write (one slice
// update), the array is advanced by an index, and an empty Allow-Headers takes no value.
type replyMemory struct {
	text strings.Builder // bytes of values handed out, never rewritten
	vals []string        // the current array of values, handed out up to used
	used int
}

const (
	textChunk     = 4096 // bytes: about 40 replies' ids
	valsChunk     = 96   // values (1,536 bytes, a size class): 32 to 48 replies
	maxChunkValue = 256  // longer values (a hostile Allow-Headers echo) get memory of their own
)

// values returns a reply's ids and Allow-Headers echo as header values (each len == cap,
// so that an append by anyone copies); ahv is nil when ah is empty.
func (m *replyMemory) values(rid, hid, ah string) (ridv, hidv, ahv []string) {
	n := len(rid) + len(hid) + len(ah)
	var all string
	if n > maxChunkValue {
		all = rid + hid + ah
	} else {
		if m.text.Cap()-m.text.Len() < n {
			m.text = strings.Builder{}
			m.text.Grow(textChunk)
		}
		var b [maxChunkValue]byte // on the stack
		k := copy(b[:], rid)
		k += copy(b[k:], hid)
		copy(b[k:], ah)
		start := m.text.Len()
		_, _ = m.text.Write(b[:n])
		all = m.text.String()[start:]
	}
	k := 2
	if ah != "" {
		k = 3
	}
	if len(m.vals)-m.used < k {
		m.vals, m.used = make([]string, valsChunk), 0
	}
	vs := m.vals[m.used : m.used+k : m.used+k]
	m.used += k
	vs[0], vs[1] = all[:len(rid)], all[len(rid):len(rid)+len(hid)]
	if k == 3 {
		vs[2] = all[len(rid)+len(hid):]
		ahv = vs[2:3:3]
	}
	return vs[0:1:1], vs[1:2:2], ahv
}
