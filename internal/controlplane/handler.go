package controlplane

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/s3cors/s3cors/evaluator"
)

// MaxBody is PutBucketCors's limit on the document: a longer body is refused without being
// read to its end.
const MaxBody = 64 * 1024

// ServeHTTP answers the bucket cors subresource: PUT, GET and DELETE /{bucket}?cors, path
// style or virtual-hosted per the seed's addressing. Anything else is NotImplemented.
func (cp *ControlPlane) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := operation(r.Method)
	bucket, ok := cp.bucketOf(r)
	if !ok {
		cp.fail(w, op, errNotImplemented)
		return
	}
	a, e := cp.verifier.verify(r)
	if e == nil && !cp.Known(bucket) {
		e = noSuchBucket(bucket)
	} else if e == nil && !a.key.may(bucket) {
		e = errAccessDenied
	}
	if e != nil {
		if e.Code != "NoSuchBucket" {
			cp.metrics.rejected.WithLabelValues(e.Code).Inc()
			cp.log.Warn("request refused", "operation", op, "bucket", bucket, "code", e.Code, "remote", r.RemoteAddr)
		}
		cp.fail(w, op, e)
		return
	}
	switch r.Method {
	case http.MethodPut:
		e = cp.putCORS(r, a, bucket)
		if e == nil {
			setIDs(w.Header())
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(http.StatusOK)
		}
	case http.MethodGet:
		b := cp.Get(bucket)
		if b == nil {
			e = noSuchCORS(bucket)
			break
		}
		body := b.XML()
		setIDs(w.Header())
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	case http.MethodDelete:
		if e = cp.change(r, a, bucket, nil); e == nil {
			setIDs(w.Header())
			w.WriteHeader(http.StatusNoContent)
		}
	default:
		e = errMethod
	}
	if e != nil {
		cp.fail(w, op, e)
		return
	}
	cp.metrics.requests.WithLabelValues(op, "OK").Inc()
}

func (cp *ControlPlane) fail(w http.ResponseWriter, op string, e *Error) {
	cp.metrics.requests.WithLabelValues(op, e.Code).Inc()
	e.write(w)
}

func operation(method string) string {
	switch method {
	case http.MethodPut:
		return "PutBucketCors"
	case http.MethodGet:
		return "GetBucketCors"
	case http.MethodDelete:
		return "DeleteBucketCors"
	}
	return "Other"
}

// putCORS reads, checks and stores a PutBucketCors body.
func (cp *ControlPlane) putCORS(r *http.Request, a *auth, bucket string) *Error {
	if r.ContentLength > MaxBody {
		return errTooBig
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		return &Error{Status: http.StatusBadRequest, Code: "IncompleteBody", Message: "You did not provide the number of bytes specified by the Content-Length HTTP header."}
	}
	if len(body) > MaxBody {
		return errTooBig
	}
	if e := a.checkPayload(body); e != nil {
		return e
	}
	if e := checkDigests(r.Header, body); e != nil {
		return e
	}
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '<' {
		// S3 reads XML only; the evaluator would also take the JSON forms.
		return &Error{Status: http.StatusBadRequest, Code: evaluator.CodeMalformedXML, Message: "The XML you provided was not well-formed or did not validate against our published schema"}
	}
	b, err := evaluator.ParseBucketCORS(body)
	if err != nil {
		var ve *evaluator.ValidationError
		if errors.As(err, &ve) && len(ve.Problems) > 0 {
			p := ve.Problems[0]
			status := http.StatusBadRequest
			return &Error{Status: status, Code: p.Code, Message: p.Message}
		}
		return &Error{Status: http.StatusBadRequest, Code: evaluator.CodeMalformedXML, Message: "The XML you provided was not well-formed or did not validate against our published schema"}
	}
	return cp.change(r, a, bucket, b)
}

// change stores a new configuration for the bucket (nil: none) and logs it.
func (cp *ControlPlane) change(r *http.Request, a *auth, bucket string, b *evaluator.BucketCORS) *Error {
	if err := cp.Put(bucket, b); err != nil {
		cp.log.Error("change not stored", "bucket", bucket, "err", err)
		return errUnavailable
	}
	cp.log.Info("bucket CORS changed", "operation", operation(r.Method), "bucket", bucket, "access_key", a.key.AccessKeyID)
	return nil
}

// bucketOf finds the bucket a cors subresource request names: "<bucket>.<suffix>" hosts for
// the configured suffixes, otherwise the path's only segment when path style is on. The
// query must name the cors subresource.
func (cp *ControlPlane) bucketOf(r *http.Request) (string, bool) {
	if !r.URL.Query().Has("cors") {
		return "", false
	}
	path := r.URL.Path
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(host)
	for _, suffix := range cp.addressing.VirtualHostSuffixes {
		if name, ok := strings.CutSuffix(host, "."+strings.ToLower(suffix)); ok && name != "" {
			if path != "/" && path != "" {
				return "", false
			}
			return name, true
		}
	}
	if !cp.addressing.PathStyle {
		return "", false
	}
	seg := strings.TrimSuffix(strings.TrimPrefix(path, "/"), "/")
	if seg == "" || strings.Contains(seg, "/") {
		return "", false
	}
	if s, err := url.PathUnescape(seg); err == nil {
		seg = s
	}
	return seg, true
}

// checksums are the x-amz-checksum-* headers S3 takes for a body, with S3's name for each.
var checksums = []struct {
	header, name string
	hash         func() hash.Hash
}{
	{"X-Amz-Checksum-Crc32", "CRC32", func() hash.Hash { return crc32.NewIEEE() }},
	{"X-Amz-Checksum-Crc32c", "CRC32C", func() hash.Hash { return crc32.New(crc32.MakeTable(crc32.Castagnoli)) }},
	{"X-Amz-Checksum-Crc64nvme", "CRC64NVME", func() hash.Hash { return crc64.New(crc64NVME) }},
	{"X-Amz-Checksum-Sha1", "SHA1", sha1.New},
	{"X-Amz-Checksum-Sha256", "SHA256", sha256.New},
}

// crc64NVME is the CRC-64/NVME table (reflected polynomial 0x9A6C9329AC4BC9B5).
var crc64NVME = crc64.MakeTable(0x9A6C9329AC4BC9B5)

// checkDigests enforces PutBucketCors's integrity requirement: a Content-MD5 or an
// x-amz-checksum-* header, and every one given must match the body.
func checkDigests(h http.Header, body []byte) *Error {
	found := false
	if v := h.Get("Content-Md5"); v != "" || len(h.Values("Content-Md5")) > 0 {
		found = true
		want, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(want) != md5.Size {
			return errInvalidDigest
		}
		sum := md5.Sum(body)
		if !bytes.Equal(sum[:], want) {
			return errBadDigest
		}
	}
	for _, c := range checksums {
		v := h.Get(c.header)
		if v == "" {
			continue
		}
		found = true
		hh := c.hash()
		want, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(want) != hh.Size() {
			return invalidChecksum(strings.ToLower(c.header))
		}
		hh.Write(body)
		if !bytes.Equal(hh.Sum(nil), want) {
			return badChecksum(c.name)
		}
	}
	if !found {
		return errMissingDigest
	}
	return nil
}
