package evaluator

import (
	"encoding/binary"
	"errors"
	"hash/maphash"
	"math/bits"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Policy is a compiled, immutable configuration: every per-request question (which bucket,
// which rule, which header values) is answered from structures built once here, so Evaluate
// only reads. Safe for concurrent use.
type Policy struct {
	cfg      *Config
	buckets  map[string]*bucketPolicy
	few      []*bucketPolicy // the buckets again when there are at most fewBuckets, else nil
	unlisted *bucketPolicy   // what an unlisted bucket gets; nil under "forward"
	suffixes []string        // virtual-host suffixes, lower case, longest first
	path     bool            // path-style addressing
	strip    bool            // strip upstream Access-Control-* headers
	vary     bool            // "vary": "always": Forward responses of buckets with rules get Vary
	fixed    [][]Header      // the distinct fixed header sets (FixedHeaders)
}

// bucketState says whether a bucket has rules to evaluate.
type bucketState uint8

const (
	bucketRules   bucketState = iota // CORS configured: evaluate the rules
	bucketNoCORS                     // exists, no CORS: "CORS is not enabled for this bucket."
	bucketMissing                    // does not exist: "Bucket not found"
)

// bucketPolicy is one listed bucket (or the unlisted fallback): its own name, and its
// compiled CORS, which every bucket with equal rules shares.
type bucketPolicy struct {
	name string // the listed name; "" for the unlisted fallback
	// pathName: the name has no control character, so a path-style request can name it
	// (a configured name may hold a tab, which a path segment may not).
	pathName bool
	*compiledCORS
}

// compiledCORS is one bucket CORS configuration compiled: its rules and the indexes over
// them. Configurations list the same rules for thousands of buckets, so compile builds one
// per distinct rule list (see corsCache) and the buckets point at it; nothing in it depends
// on a bucket's name.
type compiledCORS struct {
	state  bucketState
	source string // "bucket", "default" or "unlisted", for Explain
	rules  []compiledRule

	// The index that keeps a 100-rule bucket close to a 1-rule one: candidate rules are
	// those listing the request's origin verbatim (exact) or holding a wildcard origin
	// (wild), intersected with those allowing the method (byMethod); the scan then visits
	// only candidates, in document order, so the first match is still S3's.
	exact     map[string]ruleSet // nil for buckets with few origins: a scan is cheaper
	withExact ruleSet            // rules with at least one verbatim AllowedOrigin
	wild      ruleSet            // rules with a "*" anywhere in an AllowedOrigin
	anyOrigin ruleSet            // rules with AllowedOrigin "*"
	byMethod  [5]ruleSet
	all       ruleSet

	// Wildcard origins are indexed too when there are many: a pattern whose suffix starts
	// with "." (https://*.example.com) can only match an origin that ends with that very
	// suffix, found by looking up the origin's tail at each of its dots. Other wildcard
	// rules (suffix empty or not at a dot, or "*") are always candidates.
	wildBySuffix map[string]ruleSet // nil for buckets with few wildcard rules
	wildOther    ruleSet
	// The lengths of wildBySuffix's keys: bit n for a length n below 64, and wildLong for any
	// longer, so that an origin's tails of other lengths are never looked up.
	wildLens uint64
	wildLong bool
}

// fewBuckets is the number of buckets up to which lookup compares names instead of hashing.
const fewBuckets = 4

// headerMapThreshold is the number of AllowedHeaders from which a rule looks names up in a
// map; below it, comparing keys (three integer compares each) beats hashing the name.
const headerMapThreshold = 16

// headerKey is an AllowedHeader (lower case) for comparison with a requested name's span:
// its length and, when that is at most 16, its bytes as two zero-padded little-endian words.
type headerKey struct {
	w0, w1 uint64
	n      int
}

func keyOf(h string) headerKey {
	k := headerKey{n: len(h)}
	if len(h) <= 16 {
		var b [16]byte
		copy(b[:], h)
		k.w0, k.w1 = load64(b[:8]), load64(b[8:])
	}
	return k
}

// indexThreshold is the number of exact origins from which a bucket gets an origin map;
// below it, comparing a handful of strings beats hashing.
const indexThreshold = 8

// ruleSet is a set of rule indexes; PutBucketCors allows at most 100 rules.
type ruleSet [2]uint64

func (s *ruleSet) add(i int)            { s[i>>6] |= 1 << (i & 63) }
func (s ruleSet) has(i int) bool        { return s[i>>6]&(1<<(i&63)) != 0 }
func (s ruleSet) and(t ruleSet) ruleSet { return ruleSet{s[0] & t[0], s[1] & t[1]} }
func (s ruleSet) or(t ruleSet) ruleSet  { return ruleSet{s[0] | t[0], s[1] | t[1]} }

// next returns the smallest index >= i in s, or -1.
func (s ruleSet) next(i int) int {
	for w := i >> 6; w < len(s); w++ {
		word := s[w]
		if w == i>>6 {
			word &^= 1<<(i&63) - 1
		}
		if word != 0 {
			return w<<6 + bits.TrailingZeros64(word)
		}
	}
	return -1
}

// pattern is an AllowedOrigin or AllowedHeader with one "*": prefix, anything, suffix.
type pattern struct {
	prefix, suffix string
}

func (p pattern) match(s string) bool {
	return len(s) >= len(p.prefix)+len(p.suffix) &&
		s[:len(p.prefix)] == p.prefix && s[len(s)-len(p.suffix):] == p.suffix
}

func splitPattern(v string) pattern {
	i := strings.IndexByte(v, '*')
	return pattern{prefix: v[:i], suffix: v[i+1:]}
}

// compiledRule is a Rule with its matching sets and response header values precomputed.
type compiledRule struct {
	id      string
	origins []string // verbatim AllowedOrigins without "*"
	// unsafeOrigins: one of origins holds CR, LF or NUL, so a request origin equal to it
	// must still be refused unless the rule also allows "*".
	unsafeOrigins bool
	wild          []pattern // AllowedOrigins with one "*" (not "*" alone)
	anyOrigin     bool      // AllowedOrigins holds "*": Allow-Origin is "*", no credentials
	methods       uint8     // methodBit of each AllowedMethod

	anyHeader   bool                // AllowedHeaders holds "*"
	headers     []string            // AllowedHeaders without "*", ASCII lower case
	headerSet   map[string]struct{} // the same, for rules with many
	headerKeys  []headerKey         // the same as keys, for rules without headerSet
	headerWild  []pattern           // one-"*" AllowedHeaders, lower case
	noHeaders   bool                // no AllowedHeaders at all: any requested header fails
	allowMethod string              // Access-Control-Allow-Methods
	expose      string              // Access-Control-Expose-Headers, "" when none
	maxAge      string              // Access-Control-Max-Age, "" when unset
	fixed       int                 // the rule's fixed header set (Decision.HeaderSet)
	tmpl        *headerTemplate     // the rule's headers, shared by rules with equal answers
}

// Compile turns a configuration into a Policy, validating it first exactly as ParseConfig
// does (a Config may be built in code). Zero values take the documented defaults:
// UnlistedBuckets "" is "not-enabled", UpstreamCORSHeaders "" is "strip", Vary "" is "s3".
// Addressing is taken as given: the zero Addressing has path style off and no suffixes, which
// is an error.
func Compile(cfg *Config) (*Policy, error) {
	if cfg == nil {
		return nil, errors.New("evaluator: nil configuration")
	}
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	return compile(cfg), nil
}

// Load parses, validates and compiles a configuration document: ParseConfig then Compile.
func Load(data []byte) (*Policy, error) {
	cfg, err := ParseConfig(data)
	if err != nil {
		return nil, err
	}
	return compile(cfg), nil
}

// Config returns the configuration the policy was compiled from. It is shared, not copied:
// changing it does not change the policy, but callers should treat it as read-only.
func (p *Policy) Config() *Config { return p.cfg }

// eachRule calls fn with every compiled rule of order (Policy.ruleOrder) once: the listed buckets' in bucket-name order
// (so that whatever fn numbers does not depend on map order), then the unlisted fallback's.
// Buckets that share compiled rules are visited at the first of their names: a later visit
// would only repeat what fn has seen.
func eachRule(order []*compiledCORS, fn func(*compiledRule)) {
	for _, c := range order {
		for i := range c.rules {
			fn(&c.rules[i])
		}
	}
}

// ruleOrder lists each distinct compiled configuration once, in eachRule's order.
func (p *Policy) ruleOrder() []*compiledCORS {
	names := make([]string, 0, len(p.buckets))
	for name, bp := range p.buckets {
		if len(bp.rules) > 0 {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var order []*compiledCORS
	seen := make(map[*compiledCORS]bool)
	for _, name := range names {
		if c := p.buckets[name].compiledCORS; !seen[c] {
			seen[c] = true
			order = append(order, c)
		}
	}
	if p.unlisted != nil && len(p.unlisted.rules) > 0 {
		order = append(order, p.unlisted.compiledCORS)
	}
	return order
}

// checkConfig validates a Config held in memory, in bucket order.
func checkConfig(cfg *Config) error {
	var ps problems
	names := cfg.BucketOrder
	if len(names) != len(cfg.Buckets) || !sameNames(names, cfg.Buckets) {
		names = make([]string, 0, len(cfg.Buckets))
		for n := range cfg.Buckets {
			names = append(names, n)
		}
		sort.Strings(names)
	}
	for _, name := range names {
		path := bucketPath(name)
		b := cfg.Buckets[name]
		switch {
		case name == "":
			ps.config(path, "a bucket name cannot be empty")
		case strings.ContainsAny(name, "/?#") || hasCTL(name):
			ps.config(path, "bucket name "+strconv.Quote(name)+` cannot contain "/", "?", "#" or control characters`)
		case b == nil:
			ps.config(path, "nil bucket (use a BucketCORS with Form FormNone for a bucket without CORS)")
		case b.Form != FormNone:
			checkRules(&ps, path, b.Form, b.Rules)
		}
	}
	if cfg.Default != nil && cfg.Default.Form != FormNone {
		checkRules(&ps, "default", cfg.Default.Form, cfg.Default.Rules)
	}
	switch cfg.UnlistedBuckets {
	case "", UnlistedNotEnabled, UnlistedNotFound, UnlistedForward:
	default:
		ps.config("unlistedBuckets", strconv.Quote(string(cfg.UnlistedBuckets))+` is not one of "not-enabled", "not-found", "forward"`)
	}
	switch cfg.UpstreamCORSHeaders {
	case "", UpstreamStrip, UpstreamKeep:
	default:
		ps.config("upstreamCORSHeaders", strconv.Quote(string(cfg.UpstreamCORSHeaders))+` is not one of "strip", "keep"`)
	}
	switch cfg.Vary {
	case "", VaryS3, VaryAlways:
	default:
		ps.config("vary", strconv.Quote(string(cfg.Vary))+` is not one of "s3", "always"`)
	}
	for i, s := range cfg.Addressing.VirtualHostSuffixes {
		if msg := checkSuffix(s); msg != "" {
			ps.config(index("addressing.virtualHostSuffixes", i), msg)
		}
	}
	if !cfg.Addressing.PathStyle && len(cfg.Addressing.VirtualHostSuffixes) == 0 {
		ps.config("addressing", "pathStyle is false and virtualHostSuffixes is empty, so no request could name a bucket")
	}
	return ps.err()
}

func sameNames(names []string, m map[string]*BucketCORS) bool {
	for _, n := range names {
		if _, ok := m[n]; !ok {
			return false
		}
	}
	return true
}

// compile builds the policy of a valid configuration.
func compile(cfg *Config) *Policy {
	p := &Policy{
		cfg:     cfg,
		buckets: make(map[string]*bucketPolicy, len(cfg.Buckets)),
		path:    cfg.Addressing.PathStyle,
		strip:   cfg.UpstreamCORSHeaders != UpstreamKeep,
		vary:    cfg.Vary == VaryAlways,
	}
	// Equal header values share memory across rules and buckets: 100,000 buckets with the
	// same rules hold one "GET, PUT".
	cache := corsCache{in: interner{}, seed: maphash.MakeSeed()}
	bps := make([]bucketPolicy, len(cfg.Buckets))
	i := 0
	for name, b := range cfg.Buckets {
		bp := &bps[i]
		i++
		bp.name, bp.pathName, bp.compiledCORS = name, isPathBucketName(name), cache.compile(b)
		p.buckets[name] = bp
	}
	if len(p.buckets) <= fewBuckets {
		p.few = make([]*bucketPolicy, 0, len(p.buckets))
		for _, bp := range p.buckets {
			p.few = append(p.few, bp)
		}
	}
	switch {
	case cfg.Default != nil:
		p.unlisted = &bucketPolicy{compiledCORS: compileBucket(cfg.Default, "default", cache.in)}
	case cfg.UnlistedBuckets == UnlistedForward:
		p.unlisted = nil
	case cfg.UnlistedBuckets == UnlistedNotFound:
		p.unlisted = &bucketPolicy{compiledCORS: &compiledCORS{state: bucketMissing, source: "unlisted"}}
	default:
		p.unlisted = &bucketPolicy{compiledCORS: &compiledCORS{state: bucketNoCORS, source: "unlisted"}}
	}
	for _, s := range cfg.Addressing.VirtualHostSuffixes {
		p.suffixes = append(p.suffixes, asciiLower(s))
	}
	// Longest first: with "s3.example.com" and "example.com", a.s3.example.com is bucket a.
	sort.SliceStable(p.suffixes, func(i, j int) bool { return len(p.suffixes[i]) > len(p.suffixes[j]) })
	order := p.ruleOrder()
	p.numberFixedSets(order)
	buildTemplates(order)
	return p
}

// buildTemplates gives every compiled rule its header template, one per distinct answer.
func buildTemplates(order []*compiledCORS) {
	seen := map[fixedKey]*headerTemplate{}
	eachRule(order, func(cr *compiledRule) {
		k := fixedKey{cr.allowMethod, cr.expose, cr.maxAge, cr.anyOrigin}
		if seen[k] == nil {
			seen[k] = newHeaderTemplate(cr)
		}
		cr.tmpl = seen[k]
	})
}

// corsCache compiles each distinct bucket CORS configuration once. Buckets are keyed by a
// hash of their rules, and a hit is confirmed by comparing the rules in full, so two rule
// lists share compiled rules only when they are equal member by member.
type corsCache struct {
	in     interner
	seed   maphash.Seed
	byHash map[uint64][]corsEntry
	noCORS *compiledCORS // the one shared by every listed bucket without CORS
}

type corsEntry struct {
	rules []Rule
	c     *compiledCORS
}

// compile returns the compiled CORS of a listed bucket, shared with earlier equal ones.
func (cc *corsCache) compile(b *BucketCORS) *compiledCORS {
	if b == nil || b.Form == FormNone {
		if cc.noCORS == nil {
			cc.noCORS = compileBucket(b, "bucket", cc.in)
		}
		return cc.noCORS
	}
	h := hashRules(cc.seed, b.Rules)
	for _, e := range cc.byHash[h] {
		if rulesEqual(e.rules, b.Rules) {
			return e.c
		}
	}
	c := compileBucket(b, "bucket", cc.in)
	if cc.byHash == nil {
		cc.byHash = map[uint64][]corsEntry{}
	}
	cc.byHash[h] = append(cc.byHash[h], corsEntry{b.Rules, c})
	return c
}

// hashRules hashes every member of every rule; lengths go in too, so that no two different
// rule lists are one stream of bytes.
func hashRules(seed maphash.Seed, rules []Rule) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	var n [8]byte
	num := func(v uint64) {
		binary.LittleEndian.PutUint64(n[:], v)
		_, _ = h.Write(n[:])
	}
	list := func(vs []string) {
		num(uint64(len(vs)))
		for _, v := range vs {
			num(uint64(len(v)))
			_, _ = h.WriteString(v)
		}
	}
	num(uint64(len(rules)))
	for i := range rules {
		r := &rules[i]
		if r.ID == nil {
			num(0)
		} else {
			num(1 + uint64(len(*r.ID)))
			_, _ = h.WriteString(*r.ID)
		}
		list(r.AllowedOrigins)
		list(r.AllowedMethods)
		list(r.AllowedHeaders)
		list(r.ExposeHeaders)
		if r.MaxAgeSeconds == nil {
			num(0)
		} else {
			num(1)
			num(uint64(*r.MaxAgeSeconds))
		}
	}
	return h.Sum64()
}

// rulesEqual reports whether two rule lists compile to the same policy: the same members
// with the same values, in the same order (an empty list and an absent one compile alike).
func rulesEqual(a, b []Rule) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := &a[i], &b[i]
		if (x.ID == nil) != (y.ID == nil) || x.ID != nil && *x.ID != *y.ID ||
			(x.MaxAgeSeconds == nil) != (y.MaxAgeSeconds == nil) || x.MaxAgeSeconds != nil && *x.MaxAgeSeconds != *y.MaxAgeSeconds ||
			!slices.Equal(x.AllowedOrigins, y.AllowedOrigins) || !slices.Equal(x.AllowedMethods, y.AllowedMethods) ||
			!slices.Equal(x.AllowedHeaders, y.AllowedHeaders) || !slices.Equal(x.ExposeHeaders, y.ExposeHeaders) {
			return false
		}
	}
	return true
}

// interner makes equal strings share one copy.
type interner map[string]string

func (in interner) intern(s string) string {
	if s == "" {
		return ""
	}
	if v, ok := in[s]; ok {
		return v
	}
	in[s] = s
	return s
}

func compileBucket(b *BucketCORS, source string, in interner) *compiledCORS {
	if b == nil || b.Form == FormNone {
		return &compiledCORS{state: bucketNoCORS, source: source}
	}
	bp := &compiledCORS{state: bucketRules, source: source, rules: make([]compiledRule, len(b.Rules))}
	exactCount := 0
	for i := range b.Rules {
		r := &b.Rules[i]
		cr := &bp.rules[i]
		bp.all.add(i)
		if r.ID != nil {
			cr.id = *r.ID
		}
		for _, o := range r.AllowedOrigins {
			switch {
			case o == "*":
				cr.anyOrigin = true
				bp.anyOrigin.add(i)
				bp.wild.add(i)
			case strings.IndexByte(o, '*') >= 0:
				cr.wild = append(cr.wild, splitPattern(o))
				bp.wild.add(i)
			default:
				cr.origins = append(cr.origins, o)
				cr.unsafeOrigins = cr.unsafeOrigins || unsafeOrigin(o)
				bp.withExact.add(i)
				exactCount++
			}
		}
		for _, m := range r.AllowedMethods {
			bit := methodBit(m)
			cr.methods |= bit
			bp.byMethod[bits.TrailingZeros8(bit)].add(i)
		}
		cr.allowMethod = in.intern(strings.Join(r.AllowedMethods, ", "))
		cr.noHeaders = len(r.AllowedHeaders) == 0
		for _, h := range r.AllowedHeaders {
			lh := asciiLower(h)
			switch {
			case h == "*":
				cr.anyHeader = true
			case strings.IndexByte(h, '*') >= 0:
				cr.headerWild = append(cr.headerWild, splitPattern(lh))
			default:
				cr.headers = append(cr.headers, lh)
			}
		}
		for _, h := range cr.headers {
			cr.headerKeys = append(cr.headerKeys, keyOf(h))
		}
		if len(cr.headers) > headerMapThreshold {
			cr.headerSet = make(map[string]struct{}, len(cr.headers))
			for _, h := range cr.headers {
				cr.headerSet[h] = struct{}{}
			}
		}
		cr.expose = in.intern(strings.Join(r.ExposeHeaders, ", "))
		if r.MaxAgeSeconds != nil {
			cr.maxAge = in.intern(strconv.FormatInt(*r.MaxAgeSeconds, 10))
		}
	}
	indexWildcards(bp)
	if exactCount > indexThreshold {
		bp.exact = make(map[string]ruleSet, exactCount)
		for i := range bp.rules {
			for _, o := range bp.rules[i].origins {
				s := bp.exact[o]
				s.add(i)
				bp.exact[o] = s
			}
		}
	}
	return bp
}

// indexWildcards builds wildBySuffix for a bucket with more than indexThreshold wildcard
// rules.
func indexWildcards(bp *compiledCORS) {
	n := 0
	for i := range bp.rules {
		if bp.wild.has(i) {
			n++
		}
	}
	if n <= indexThreshold {
		return
	}
	bp.wildBySuffix = map[string]ruleSet{}
	for i := range bp.rules {
		cr := &bp.rules[i]
		if !bp.wild.has(i) {
			continue
		}
		if cr.anyOrigin {
			bp.wildOther.add(i)
			continue
		}
		for _, w := range cr.wild {
			if len(w.suffix) > 0 && w.suffix[0] == '.' {
				set := bp.wildBySuffix[w.suffix]
				set.add(i)
				bp.wildBySuffix[w.suffix] = set
				if n := len(w.suffix); n < 64 {
					bp.wildLens |= 1 << n
				} else {
					bp.wildLong = true
				}
			} else {
				bp.wildOther.add(i)
			}
		}
	}
}

// wildCandidates returns the wildcard rules that may match origin. Only the origin's tails
// whose length an indexed suffix has, and that start with a dot, are looked up: for the
// usual few lengths that is a few byte tests, not a scan of the origin.
func (bp *compiledCORS) wildCandidates(origin string) ruleSet {
	if bp.wildBySuffix == nil {
		return bp.wild
	}
	c := bp.wildOther
	for lens := bp.wildLens; lens != 0; lens &= lens - 1 {
		n := bits.TrailingZeros64(lens)
		if n > len(origin) {
			break
		}
		if i := len(origin) - n; origin[i] == '.' {
			if set, ok := bp.wildBySuffix[origin[i:]]; ok {
				c = c.or(set)
			}
		}
	}
	if bp.wildLong {
		for i := 0; i+64 <= len(origin); i++ {
			if origin[i] == '.' {
				if set, ok := bp.wildBySuffix[origin[i:]]; ok {
					c = c.or(set)
				}
			}
		}
	}
	return c
}

// asciiLower lower-cases ASCII letters only: header names are ASCII, and S3 compares them
// without Unicode case folding.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= 'A' && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
