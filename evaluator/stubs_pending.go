package evaluator

// This file holds the signatures other packages build against while the implementation lands.
// Each function moves to its real file as it is written; the file is deleted at the end.

type decisionScratch struct{}

// Policy is a compiled, immutable configuration. Safe for concurrent use.
type Policy struct{}

// ParseConfig parses and validates an s3cors configuration document (JSON). Every problem is
// reported at once as a *ValidationError.
func ParseConfig(data []byte) (*Config, error) { panic("pending") }

// ParseBucketCORS parses and validates a bare bucket CORS document: S3 XML (with or without
// namespace), AWS JSON ({"CORSRules": [...]}) or console JSON ([...]). Problem paths are
// relative, e.g. CORSRules[1].AllowedMethods[0].
func ParseBucketCORS(data []byte) (*BucketCORS, error) { panic("pending") }

// XML renders the rules as GetBucketCors does (XML, S3 namespace).
func (b *BucketCORS) XML() []byte { panic("pending") }

// JSON renders the rules as the AWS CLI shows GetBucketCors ({"CORSRules": [...]}).
func (b *BucketCORS) JSON() []byte { panic("pending") }

// ConsoleJSON renders the rules as the S3 console shows them ([...]).
func (b *BucketCORS) ConsoleJSON() []byte { panic("pending") }

// Compile turns a parsed configuration into a Policy.
func Compile(cfg *Config) (*Policy, error) { panic("pending") }

// Load parses, validates and compiles a configuration document.
func Load(data []byte) (*Policy, error) { panic("pending") }

// Config returns the configuration the policy was compiled from.
func (p *Policy) Config() *Config { panic("pending") }

// Evaluate decides r into d. It does not allocate on allowed paths.
func (p *Policy) Evaluate(r *Request, d *Decision) { panic("pending") }

// Explain evaluates r and records why each rule of the bucket did or did not match.
func (p *Policy) Explain(r *Request) *Explanation { panic("pending") }

// MergeVary returns S3's Vary value merged with the upstream's Vary values: the upstream's
// names first, in their order, then S3's names that were missing, compared case-insensitively,
// joined by ", ". A "*" from upstream wins alone.
func MergeVary(upstream []string) string { panic("pending") }

// IsCORSHeader reports whether name is an Access-Control-* header (any case).
func IsCORSHeader(name string) bool { panic("pending") }
