// Package evaluator decides every CORS outcome exactly as Amazon S3 does for a bucket's CORS
// configuration: which rule applies, what a preflight is answered, which headers an actual
// response gets, and which configurations PutBucketCors would refuse, with S3's codes and
// messages.
//
// It imports only the standard library and builds for GOOS=wasip1, so the proxy-wasm filter,
// the ext_proc server and the CLI all share one implementation.
//
// Where it sits: the bottom of the layering. It imports nothing of this repository and no
// third-party module (depguard in .golangci.yml, and make check cross-builds it for wasip1);
// internal/configfile reads files for it, and the adapters (filter, extproc, httpcors) only
// apply its decisions and response plans.
//
// # Performance design
//
// Load compiles each bucket's rules: per rule a method bitmask, exact origins, one-star patterns
// split into prefix and suffix, allowed headers as two-word keys (a map from seventeen names up),
// and prebuilt header lists in S3's order; per bucket, 128-bit rule sets by method and, from nine
// entries up, maps from exact origin and from a dotted wildcard suffix to the rules listing it.
// A request intersects those sets and visits only candidates, in document order, so the first
// match is S3's (TestIndexAgreesWithPlainScan). Buckets with equal rules share one compiled
// configuration, keyed by a seeded maphash and confirmed member by member. ParseConfig hands each
// bucket over as soon as it is read, reusing the parser's memory (FuzzLazyConfig holds it to the
// whole-tree parse).
//
// The scans that grow with the input (Access-Control-Request-Headers, requested names, the request
// target) test eight bytes at a time as a uint64 (swar.go), exact per byte, without assembly.
// Error bodies are joined from constant pieces; ids are formatted without encoding/base64 from
// the same math/rand/v2 draw. Each rewritten routine keeps its previous implementation in
// oracle_test.go and a differential fuzz target demanding byte-identical output.
//
// Typical use:
//
//	pol, err := evaluator.Load(configJSON) // parse, validate, compile once
//	var d evaluator.Decision               // reusable; Evaluate does not allocate on allowed paths
//	pol.Evaluate(&evaluator.Request{Method: "OPTIONS", Authority: host, Path: path, ...}, &d)
//	plan := d.Response()                   // a Reply is sent as it is; otherwise, the edits
//	                                       // to the upstream's response (ResponsePlan)
package evaluator

// Form records how a bucket's CORS rules were written, so they can be rendered back the same way.
type Form uint8

const (
	FormNone        Form = iota // the bucket is listed as null: it exists, no CORS configured
	FormAWSJSON                 // {"CORSRules": [...]} (AWS CLI / SDK)
	FormConsoleJSON             // [...] (S3 console)
	FormXML                     // "<CORSConfiguration>...</CORSConfiguration>"
)

// Rule is one CORSRule as the user wrote it. A nil pointer or a nil slice means the member was
// not set; GetBucketCors renders only the members that were set, in the order and case written.
type Rule struct {
	ID             *string
	AllowedOrigins []string
	AllowedMethods []string
	AllowedHeaders []string
	ExposeHeaders  []string
	MaxAgeSeconds  *int64
}

// BucketCORS is one bucket's CORS configuration. Rules is nil for FormNone.
type BucketCORS struct {
	Form  Form
	Rules []Rule
}

// Unlisted says what a bucket that is not listed under "buckets" gets when there is no "default".
type Unlisted string

const (
	UnlistedNotEnabled Unlisted = "not-enabled" // preflight 403 "CORS is not enabled for this bucket."
	UnlistedNotFound   Unlisted = "not-found"   // preflight 403 "Bucket not found"
	UnlistedForward    Unlisted = "forward"     // s3cors steps aside entirely
)

// UpstreamCORS says what happens to Access-Control-* headers the upstream store sets itself.
type UpstreamCORS string

const (
	UpstreamStrip UpstreamCORS = "strip" // removed (default)
	UpstreamKeep  UpstreamCORS = "keep"  // left as they are
)

// VaryMode says which responses of a bucket with CORS rules carry S3's Vary.
type VaryMode string

const (
	// VaryS3 (default): as S3, only a response a rule decorated carries Vary, so a response
	// to a request without Origin, or from an origin no rule allows, carries none.
	VaryS3 VaryMode = "s3"
	// VaryAlways: every response of a bucket with CORS rules carries S3's three-name Vary
	// (merged with the store's own), so no shared or browser cache serves one origin's copy
	// to another. A deliberate departure from S3; preflight answers are unchanged.
	VaryAlways VaryMode = "always"
)

// Addressing says how bucket and key are found in a request.
type Addressing struct {
	VirtualHostSuffixes []string // "<bucket>.<suffix>" hosts are virtual-hosted style
	PathStyle           bool     // otherwise bucket = first path segment (default true)
}

// Config is a parsed s3cors configuration (see shared spec configuration.md).
type Config struct {
	Buckets             map[string]*BucketCORS // a FormNone value: bucket exists, no CORS
	BucketOrder         []string               // bucket names in the order written
	Default             *BucketCORS            // nil when absent
	UnlistedBuckets     Unlisted
	Addressing          Addressing
	UpstreamCORSHeaders UpstreamCORS
	Vary                VaryMode
}

// Problem is one thing wrong with a configuration.
type Problem struct {
	// Path names the offending field, e.g. buckets["website"].CORSRules[1].AllowedMethods[0].
	Path string
	// Code is S3's error code (InvalidRequest, MalformedXML, ...) for anything PutBucketCors
	// would refuse, or InvalidConfiguration for an s3cors-level fault (unknown key, wrong type).
	Code string
	// Message is S3's exact message, or ours for s3cors-level faults.
	Message string
	// Detail is s3cors's own explanation where S3's message is generic (MalformedXML says
	// nothing about what is missing or too long), e.g. "a rule needs at least one
	// AllowedMethod". Empty when the message says it all.
	Detail string
}

// String renders "path: Code: Message", followed by " (Detail)" when there is one.
func (p Problem) String() string {
	s := p.Code + ": " + p.Message
	if p.Path != "" {
		s = p.Path + ": " + s
	}
	if p.Detail != "" {
		s += " (" + p.Detail + ")"
	}
	return s
}

// ValidationError carries every problem found in a configuration, in document order.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	s := "evaluator: invalid configuration"
	for _, p := range e.Problems {
		s += "\n  " + p.String()
	}
	return s
}

// Request is what the evaluator reads of an HTTP request. Header values are the raw values
// (first value if the header repeats); the Has* flags tell an absent header from an empty one.
type Request struct {
	Method    string // HTTP method, e.g. OPTIONS
	Authority string // Host / :authority, may carry a port
	Path      string // raw request target (:path), may carry a query string

	Origin            string
	HasOrigin         bool
	RequestMethod     string // Access-Control-Request-Method
	HasRequestMethod  bool
	RequestHeaders    string // Access-Control-Request-Headers
	HasRequestHeaders bool

	// What else may name a bucket to the store (see Ambiguity); adapters report what they
	// see, the evaluator decides. Host is a Host header besides Authority (an HTTP/2 "host"
	// beside ":authority", the Host line of an absolute-form request); RepeatedHost says the
	// request carried more than one Host or :authority; ForwardedHost is X-Forwarded-Host,
	// and Forwarded the RFC 7239 header, each with its values joined by ",".
	Host             string
	HasHost          bool
	RepeatedHost     bool
	ForwardedHost    string
	HasForwardedHost bool
	Forwarded        string
	HasForwarded     bool
}

// Outcome is what the proxy does with a request.
type Outcome uint8

const (
	// PassThrough: not an S3 bucket request, or an unlisted bucket under "forward". Touch
	// nothing, neither the request nor the response.
	PassThrough Outcome = iota
	// Reply: answer at the proxy with Status, Headers and Body; the request never goes upstream.
	Reply
	// Decorate: forward the request; on the response remove upstream Access-Control-* headers if
	// StripUpstream, then set Headers, each replacing any upstream header of the same name,
	// except Vary, which is merged with the upstream's (see MergeVary).
	Decorate
	// Forward: forward the request; the bucket is ours but no rule applies, so the response gets
	// no CORS headers (upstream Access-Control-* removed if StripUpstream). Headers is empty,
	// except under "vary": "always" for a bucket with CORS rules, where it is S3's Vary alone,
	// to be merged with the upstream's as for Decorate.
	Forward
)

// Reason says why a decision was taken; it names metrics and log lines.
type Reason uint8

const (
	ReasonNotBucket            Reason = iota // no bucket could be determined
	ReasonUnlistedForward                    // unlisted bucket, unlistedBuckets "forward"
	ReasonAllowed                            // a rule matched
	ReasonNoOrigin                           // preflight without Origin: 400
	ReasonBucketNotFound                     // preflight, unlisted bucket under "not-found": 403
	ReasonNotEnabled                         // preflight, bucket without CORS: 403
	ReasonMissingRequestMethod               // preflight without Access-Control-Request-Method: 400
	ReasonNotAllowed                         // preflight, no rule matched: 403
	ReasonActualNoOrigin                     // actual request without Origin: forwarded, no CORS
	ReasonActualNoMatch                      // actual request, no rule matched or no CORS: forwarded
	ReasonAmbiguous                          // preflight, the store may serve another bucket: 403
	ReasonActualAmbiguous                    // actual request, the store may serve another bucket: forwarded, stripped
)

var reasonNames = [...]string{
	ReasonNotBucket:            "not_bucket",
	ReasonUnlistedForward:      "unlisted_forward",
	ReasonAllowed:              "allowed",
	ReasonNoOrigin:             "no_origin",
	ReasonBucketNotFound:       "bucket_not_found",
	ReasonNotEnabled:           "not_enabled",
	ReasonMissingRequestMethod: "missing_request_method",
	ReasonNotAllowed:           "not_allowed",
	ReasonActualNoOrigin:       "actual_no_origin",
	ReasonActualNoMatch:        "actual_no_match",
	ReasonAmbiguous:            "ambiguous",
	ReasonActualAmbiguous:      "actual_ambiguous",
}

// String returns the reason's snake_case name, as used in metric names and logs.
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown"
}

// ReplyDetails names a reply taken for reason r in Envoy's %RESPONSE_CODE_DETAILS%, the same
// from the wasm filter and the ext_proc server, so that one access-log query or alert serves
// both: "s3cors_preflight_allowed", or "s3cors_preflight_denied_<reason>" for a refusal, and
// "s3cors_preflight" for a reason this package does not name.
func (r Reason) ReplyDetails() string {
	if int(r) < len(replyDetails) {
		return replyDetails[r]
	}
	return "s3cors_preflight"
}

var replyDetails = func() (d [len(reasonNames)]string) {
	for r := range d {
		d[r] = "s3cors_preflight_denied_" + reasonNames[r]
	}
	d[ReasonAllowed] = "s3cors_preflight_allowed"
	return d
}()

// Header is one response header, with S3's Title-Case name.
type Header struct {
	Name  string
	Value string
}

// Decision is the evaluator's answer for one request. It is meant to be reused: Evaluate
// overwrites it, and Bucket, Key, Headers and Body may point into its internal buffers, so
// they stay valid only until the next Evaluate with the same Decision (copy what must live
// longer). Headers must not be modified.
type Decision struct {
	Outcome Outcome
	Reason  Reason
	Bucket  string // "" when no bucket was determined
	Key     string // "" for the bucket root
	Rule    int    // index of the matched rule, -1 when none
	// HeaderSet numbers the matched rule's fixed CORS headers (see Policy.FixedHeaders), so
	// an adapter can prepare them once per policy; -1 when no rule matched.
	HeaderSet int

	// Status is the HTTP status of a Reply.
	Status int
	// Headers, for a Reply, are every header S3 sends, in S3's order, including Content-Type,
	// Content-Length, Connection, x-amz-request-id and x-amz-id-2 (but not Date, Server or
	// Transfer-Encoding, which the proxy owns). For Decorate they are the CORS headers to add
	// to the upstream response, Vary included and last. For Forward, see Forward. Response
	// returns what to do with the upstream's response.
	Headers []Header
	// Body is the XML error body of a failed preflight, nil otherwise.
	Body []byte
	// StripUpstream: for Decorate and Forward, remove the upstream's own Access-Control-*
	// headers from its response.
	StripUpstream bool
	// Ambiguity says why the bucket is uncertain for ReasonAmbiguous and
	// ReasonActualAmbiguous; AmbiguityNone otherwise.
	Ambiguity Ambiguity

	scratch decisionScratch
}

// SetsHeaders reports whether the upstream's response gets Headers set, Vary merged with the
// upstream's: a Decorate, or a Forward under "vary": "always" (Response().SetsHeaders()).
func (d *Decision) SetsHeaders() bool {
	pl := d.Response()
	return pl.SetsHeaders()
}

// EditsResponse reports whether the upstream's response is changed at all: headers set, or
// the upstream's own Access-Control-* headers stripped (Response().Changes()). Otherwise an
// adapter need not look at the response.
func (d *Decision) EditsResponse() bool {
	pl := d.Response()
	return pl.Changes()
}

// RuleTrace says how one rule fared against a request, for `s3cors explain`.
type RuleTrace struct {
	Index          int
	ID             string
	OriginMatched  bool
	MethodMatched  bool
	HeadersMatched bool
	// FailedHeader is the first requested header name that no AllowedHeader matched.
	FailedHeader string
	Matched      bool // the rule applies (and, being first, is the one used)
}

// Explanation is a Decision with the rule-by-rule reasoning behind it. Unlike a Decision it
// owns its memory.
type Explanation struct {
	Decision Decision
	// Source says where the bucket's rules came from: "bucket", "default", "unlisted" or "".
	Source string
	Rules  []RuleTrace
}
