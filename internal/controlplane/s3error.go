package controlplane

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
)

// Error is an S3 error reply: the status, S3's code and message and, for bucket errors, the
// bucket's name (S3's <BucketName> element).
type Error struct {
	Status  int
	Code    string
	Message string
	Bucket  string
}

func (e *Error) Error() string { return "controlplane: " + e.Code + ": " + e.Message }

// S3's errors, with their exact codes, messages and statuses.
var (
	errAccessDenied   = &Error{Status: http.StatusForbidden, Code: "AccessDenied", Message: "Access Denied"}
	errExpired        = &Error{Status: http.StatusForbidden, Code: "AccessDenied", Message: "Request has expired"}
	errSignature      = &Error{Status: http.StatusForbidden, Code: "SignatureDoesNotMatch", Message: "The request signature we calculated does not match the signature you provided. Check your key and signing method."}
	errAccessKey      = &Error{Status: http.StatusForbidden, Code: "InvalidAccessKeyId", Message: "The AWS Access Key Id you provided does not exist in our records."}
	errSkewed         = &Error{Status: http.StatusForbidden, Code: "RequestTimeTooSkewed", Message: "The difference between the request time and the current time is too large."}
	errContentSHA256  = &Error{Status: http.StatusBadRequest, Code: "XAmzContentSHA256Mismatch", Message: "The provided 'x-amz-content-sha256' header does not match what was computed."}
	errMissingDigest  = &Error{Status: http.StatusBadRequest, Code: "InvalidRequest", Message: "Missing required header for this request: Content-MD5 OR x-amz-checksum-*"}
	errInvalidDigest  = &Error{Status: http.StatusBadRequest, Code: "InvalidDigest", Message: "The Content-MD5 you specified was invalid."}
	errBadDigest      = &Error{Status: http.StatusBadRequest, Code: "BadDigest", Message: "The Content-MD5 you specified did not match what we received."}
	errTooBig         = &Error{Status: http.StatusBadRequest, Code: "MaxMessageLengthExceeded", Message: "Your request was too big."}
	errNotImplemented = &Error{Status: http.StatusNotImplemented, Code: "NotImplemented", Message: "A header you provided implies functionality that is not implemented"}
	errMethod         = &Error{Status: http.StatusMethodNotAllowed, Code: "MethodNotAllowed", Message: "The specified method is not allowed against this resource."}
	errUnavailable    = &Error{Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable", Message: "Please reduce your request rate."}
)

func noSuchBucket(bucket string) *Error {
	return &Error{Status: http.StatusNotFound, Code: "NoSuchBucket", Message: "The specified bucket does not exist", Bucket: bucket}
}

func noSuchCORS(bucket string) *Error {
	return &Error{Status: http.StatusNotFound, Code: "NoSuchCORSConfiguration", Message: "The CORS configuration does not exist", Bucket: bucket}
}

func malformedAuth(msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "AuthorizationHeaderMalformed", Message: "The authorization header is malformed; " + msg}
}

func badChecksum(algorithm string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "BadDigest", Message: "The " + algorithm + " you specified did not match the calculated checksum."}
}

func invalidChecksum(header string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "InvalidRequest", Message: "Value for " + header + " header is invalid."}
}

// write sends e as S3 does: application/xml, the XML declaration, <Error> with Code,
// Message, BucketName when set, RequestId and HostId, and the same ids in x-amz-request-id
// and x-amz-id-2.
func (e *Error) write(w http.ResponseWriter) {
	id, host := requestIDs()
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<Error><Code>")
	b.WriteString(escapeXML(e.Code))
	b.WriteString("</Code><Message>")
	b.WriteString(escapeXML(e.Message))
	b.WriteString("</Message>")
	if e.Bucket != "" {
		b.WriteString("<BucketName>" + escapeXML(e.Bucket) + "</BucketName>")
	}
	b.WriteString("<RequestId>" + id + "</RequestId><HostId>" + host + "</HostId></Error>")
	h := w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	h.Set("X-Amz-Request-Id", id)
	h.Set("X-Amz-Id-2", host)
	w.WriteHeader(e.Status)
	_, _ = w.Write([]byte(b.String()))
}

// requestIDs draws S3-shaped ids: 16 upper-case hex digits and 56 base64 characters.
func requestIDs() (id, host string) {
	var raw [50]byte
	_, _ = rand.Read(raw[:])
	return strings.ToUpper(hex.EncodeToString(raw[:8])), base64.StdEncoding.EncodeToString(raw[8:50])
}

// setIDs adds the ids to a successful reply, as S3 does.
func setIDs(h http.Header) {
	id, host := requestIDs()
	h.Set("X-Amz-Request-Id", id)
	h.Set("X-Amz-Id-2", host)
}

var xmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;")

func escapeXML(s string) string { return xmlEscaper.Replace(s) }
