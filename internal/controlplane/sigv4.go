package controlplane

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// SigV4 constants.
const (
	sigAlgorithm    = "AWS4-HMAC-SHA256"
	sigTimeFormat   = "20060102T150405Z"
	unsignedPayload = "UNSIGNED-PAYLOAD"
	// MaxSkew is how far a request's X-Amz-Date may be from the control plane's clock, as S3.
	MaxSkew = 15 * time.Minute
	// maxPresignExpiry is S3's longest X-Amz-Expires: one week.
	maxPresignExpiry = 7 * 24 * time.Hour
)

// unreproducible are the headers the SDK's signer never signs (its IgnoredHeaders): a request
// that signed one cannot be checked with it, and is refused as a mismatch.
var unreproducible = map[string]bool{"authorization": true, "user-agent": true, "x-amzn-trace-id": true, "expect": true, "transfer-encoding": true}

// Verifier checks AWS Signature Version 4 on a request (Authorization header or presigned
// query) against the keys it holds. The expected signature is computed by aws-sdk-go-v2's v4
// signer on a copy of the request reduced to what the client signed (see RATIONALE.md).
type Verifier struct {
	Keys   Credentials
	Region string           // the region clients sign for; default us-east-1
	Now    func() time.Time // default time.Now
}

// auth is a request that passed the signature check: its key and the payload hash it
// signed, hex or UNSIGNED-PAYLOAD, which the body must match once read.
type auth struct {
	key         *Key
	payloadHash string
}

func (v *Verifier) region() string {
	if v.Region == "" {
		return "us-east-1"
	}
	return v.Region
}

func (v *Verifier) now() time.Time {
	if v.Now == nil {
		return time.Now()
	}
	return v.Now()
}

// sigRequest is what either form of a signed request says about its signature.
type sigRequest struct {
	credential    string // AK/date/region/service/aws4_request
	signedHeaders string
	signature     string
	date          string // X-Amz-Date
	payloadHash   string
	presigned     bool
	expires       time.Duration
}

// verify checks r's signature. It does not read the body: the caller checks the body
// against auth.payloadHash with checkPayload.
func (v *Verifier) verify(r *http.Request) (*auth, *Error) {
	var sr sigRequest
	q := r.URL.Query()
	switch {
	case r.Header.Get("Authorization") != "":
		if e := parseAuthorization(r, &sr); e != nil {
			return nil, e
		}
	case q.Has("X-Amz-Signature") || q.Has("X-Amz-Algorithm"):
		if e := parsePresigned(q, &sr); e != nil {
			return nil, e
		}
	default:
		return nil, errAccessDenied
	}
	scope := strings.Split(sr.credential, "/")
	if len(scope) != 5 {
		return nil, malformedAuth("the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".")
	}
	key := v.Keys[scope[0]]
	if key == nil {
		return nil, errAccessKey
	}
	t, err := time.Parse(sigTimeFormat, sr.date)
	if err != nil {
		return nil, &Error{Status: http.StatusForbidden, Code: "AccessDenied", Message: "AWS authentication requires a valid Date or x-amz-date header"}
	}
	switch {
	case scope[1] != t.Format("20060102"):
		return nil, malformedAuth("Invalid credential date. Date is not the same as X-Amz-Date.")
	case scope[2] != v.region():
		return nil, malformedAuth("the region '" + scope[2] + "' is wrong; expecting '" + v.region() + "'")
	case scope[3] != "s3" || scope[4] != "aws4_request":
		return nil, malformedAuth("the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".")
	}
	now := v.now()
	if sr.presigned {
		if now.After(t.Add(sr.expires)) {
			return nil, errExpired
		}
		if t.Sub(now) > MaxSkew {
			return nil, errSkewed
		}
	} else if d := now.Sub(t); d > MaxSkew || d < -MaxSkew {
		return nil, errSkewed
	}
	want, ok := expectedSignature(r, key, &sr, scope[2], t)
	if !ok || subtle.ConstantTimeCompare([]byte(want), []byte(sr.signature)) != 1 {
		return nil, errSignature
	}
	return &auth{key: key, payloadHash: sr.payloadHash}, nil
}

func parseAuthorization(r *http.Request, sr *sigRequest) *Error {
	h := r.Header.Get("Authorization")
	alg, rest, _ := strings.Cut(h, " ")
	if alg != sigAlgorithm {
		return &Error{Status: http.StatusBadRequest, Code: "InvalidRequest", Message: "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."}
	}
	for part := range strings.SplitSeq(rest, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			sr.credential = val
		case "SignedHeaders":
			sr.signedHeaders = val
		case "Signature":
			sr.signature = val
		}
	}
	if sr.credential == "" || sr.signedHeaders == "" || sr.signature == "" {
		return malformedAuth("the authorization header requires three components: Credential, SignedHeaders, and Signature.")
	}
	sr.date = r.Header.Get("X-Amz-Date")
	sr.payloadHash = r.Header.Get("X-Amz-Content-Sha256")
	switch {
	case sr.payloadHash == "":
		return &Error{Status: http.StatusBadRequest, Code: "InvalidRequest", Message: "Missing required header for this request: x-amz-content-sha256"}
	case sr.payloadHash == unsignedPayload:
	case len(sr.payloadHash) == 64 && isHex(sr.payloadHash):
	case strings.HasPrefix(sr.payloadHash, "STREAMING-"):
		return errNotImplemented
	default:
		return &Error{Status: http.StatusBadRequest, Code: "InvalidArgument", Message: "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER or a valid sha256 value."}
	}
	return nil
}

func parsePresigned(q url.Values, sr *sigRequest) *Error {
	if q.Get("X-Amz-Algorithm") != sigAlgorithm {
		return &Error{Status: http.StatusBadRequest, Code: "AuthorizationQueryParametersError", Message: "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\""}
	}
	sr.presigned = true
	sr.credential, sr.signedHeaders, sr.signature = q.Get("X-Amz-Credential"), q.Get("X-Amz-SignedHeaders"), q.Get("X-Amz-Signature")
	sr.date = q.Get("X-Amz-Date")
	if sr.credential == "" || sr.signedHeaders == "" || sr.signature == "" || sr.date == "" || q.Get("X-Amz-Expires") == "" {
		return &Error{Status: http.StatusBadRequest, Code: "AuthorizationQueryParametersError", Message: "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."}
	}
	secs, err := strconv.ParseInt(q.Get("X-Amz-Expires"), 10, 64)
	switch {
	case err != nil || secs < 0:
		return &Error{Status: http.StatusBadRequest, Code: "AuthorizationQueryParametersError", Message: "X-Amz-Expires should be a number"}
	case time.Duration(secs)*time.Second > maxPresignExpiry:
		return &Error{Status: http.StatusBadRequest, Code: "AuthorizationQueryParametersError", Message: "X-Amz-Expires must be less than a week (in seconds) that is 604800"}
	}
	sr.expires = time.Duration(secs) * time.Second
	sr.payloadHash = unsignedPayload
	return nil
}

// expectedSignature computes the signature r should carry, with the SDK's signer on a copy of
// r that holds only what the client signed: its method, raw path (as sent, not re-escaped,
// as S3 signs it), query (without X-Amz-Signature when presigned), host and the headers named
// in SignedHeaders. ok is false when the client signed a header the SDK never signs.
func expectedSignature(r *http.Request, key *Key, sr *sigRequest, region string, t time.Time) (sig string, ok bool) {
	rawPath, _, _ := strings.Cut(r.RequestURI, "?")
	if rawPath == "" || rawPath[0] != '/' {
		rawPath = r.URL.EscapedPath()
	}
	q := r.URL.Query()
	q.Del("X-Amz-Signature")
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	// The signer takes the path from Opaque verbatim after cutting a leading "//host", so a
	// path that itself starts with "//" survives.
	c := &http.Request{
		Method: r.Method,
		URL:    &url.URL{Scheme: scheme, Host: r.Host, Opaque: "//" + r.Host + rawPath, RawQuery: q.Encode()},
		Host:   r.Host,
		Header: http.Header{},
	}
	for name := range strings.SplitSeq(sr.signedHeaders, ";") {
		switch {
		case name == "host":
		case name == "content-length":
			c.ContentLength = r.ContentLength
		case unreproducible[name]:
			return "", false
		default:
			c.Header[http.CanonicalHeaderKey(name)] = r.Header.Values(name)
		}
	}
	creds := aws.Credentials{AccessKeyID: key.AccessKeyID, SecretAccessKey: key.SecretAccessKey}
	signer := v4.NewSigner(func(o *v4.SignerOptions) {
		o.DisableURIPathEscaping = true
		o.DisableHeaderHoisting = true
	})
	ctx := context.Background()
	if sr.presigned {
		u, _, err := signer.PresignHTTP(ctx, creds, c, sr.payloadHash, "s3", region, t)
		if err != nil {
			return "", false
		}
		pu, err := url.Parse(u)
		if err != nil {
			return "", false
		}
		return pu.Query().Get("X-Amz-Signature"), true
	}
	if err := signer.SignHTTP(ctx, creds, c, sr.payloadHash, "s3", region, t); err != nil {
		return "", false
	}
	_, sig, found := strings.Cut(c.Header.Get("Authorization"), "Signature=")
	return sig, found
}

// checkPayload checks a read body against the payload hash the request signed.
func (a *auth) checkPayload(body []byte) *Error {
	if a.payloadHash == unsignedPayload {
		return nil
	}
	sum := sha256.Sum256(body)
	if subtle.ConstantTimeCompare([]byte(hex.EncodeToString(sum[:])), []byte(strings.ToLower(a.payloadHash))) != 1 {
		return errContentSHA256
	}
	return nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return true
}
