// Package s3mem is a small in-memory object store that speaks enough of the S3 REST API for
// `s3cors serve --upstream embedded` and for tests: GET, PUT, HEAD and DELETE of objects,
// a minimal ListObjects, S3-style XML errors, ETags, and kept Content-Type and x-amz-meta-*
// headers. It has no CORS support of its own, like the stores s3cors is put in front of.
//
// Buckets are fixed when the store is made (those named in the s3cors configuration); the
// store never creates or deletes a bucket. Requests are not authenticated.
//
// Where it sits: standard library only; cmd/s3cors puts it behind the gateway, and e2e tests
// use it as a store.
package s3mem

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxObjectSize is the largest object body the store accepts unless Options says
// otherwise: enough for demos and tests, small enough not to exhaust a laptop's memory.
const DefaultMaxObjectSize = 64 << 20

// Options configure a Store.
type Options struct {
	// Buckets are the names of the buckets that exist. Others answer NoSuchBucket.
	Buckets []string
	// VirtualHostSuffixes: a Host "<bucket>.<suffix>" (any port, case-insensitive, trailing
	// dot ignored) addresses <bucket> virtual-hosted style; the key is the whole path.
	VirtualHostSuffixes []string
	// PathStyle: otherwise the bucket is the first path segment and the key the rest.
	// The zero value turns it off; s3cors configurations default it to true.
	PathStyle bool
	// MaxObjectSize bounds a PUT body in bytes. Zero means DefaultMaxObjectSize.
	MaxObjectSize int64
	// Now returns the time used for Last-Modified; nil means time.Now.
	Now func() time.Time
}

// Object is a stored object.
type Object struct {
	Body         []byte
	ContentType  string
	ETag         string            // quoted hex MD5 of Body, as S3 sends it
	Meta         map[string]string // x-amz-meta-* values by lower-case name without the prefix
	Headers      map[string]string // other stored headers: Cache-Control, Content-Disposition...
	LastModified time.Time
}

// Stats counts the requests the store has seen.
type Stats struct {
	Requests int64            `json:"requests"`
	ByMethod map[string]int64 `json:"by_method"`
}

// Store is an in-memory S3-style object store; it is an http.Handler, safe for concurrent use.
type Store struct {
	opts     Options
	suffixes []string // lower-case, with a leading dot

	mu      sync.RWMutex
	buckets map[string]map[string]*Object

	requests atomic.Int64
	countMu  sync.Mutex
	byMethod map[string]int64
}

// storedHeaders are the request headers, other than Content-Type and x-amz-meta-*, that a PUT
// keeps and a GET returns, as S3 does.
var storedHeaders = []string{"Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language", "Expires"}

// New returns a store holding the given, initially empty, buckets.
func New(opts Options) *Store {
	if opts.MaxObjectSize <= 0 {
		opts.MaxObjectSize = DefaultMaxObjectSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Store{opts: opts, buckets: map[string]map[string]*Object{}, byMethod: map[string]int64{}}
	for _, b := range opts.Buckets {
		s.buckets[b] = map[string]*Object{}
	}
	for _, suf := range opts.VirtualHostSuffixes {
		suf = strings.TrimSuffix(strings.ToLower(suf), ".")
		if suf != "" {
			s.suffixes = append(s.suffixes, "."+suf)
		}
	}
	return s
}

// Put stores an object directly, as a PUT would; it is how demos and tests seed the store.
func (s *Store) Put(bucket, key string, body []byte, contentType string, meta map[string]string) error {
	if key == "" {
		return fmt.Errorf("s3mem: empty key in bucket %q", bucket)
	}
	obj := &Object{Body: bytes.Clone(body), ContentType: contentType, ETag: etag(body), Meta: map[string]string{}, Headers: map[string]string{}, LastModified: s.opts.Now().UTC().Truncate(time.Second)}
	if obj.ContentType == "" {
		obj.ContentType = defaultContentType
	}
	for k, v := range meta {
		obj.Meta[strings.ToLower(k)] = v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	objs, ok := s.buckets[bucket]
	if !ok {
		return fmt.Errorf("s3mem: bucket %q: %w", bucket, ErrNoBucket)
	}
	objs[key] = obj
	return nil
}

// Get returns a copy of a stored object.
func (s *Store) Get(bucket, key string) (Object, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	obj, ok := s.buckets[bucket][key]
	if !ok {
		return Object{}, false
	}
	return *obj, true
}

// Keys returns the keys of a bucket, sorted.
func (s *Store) Keys(bucket string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	keys := make([]string, 0, len(s.buckets[bucket]))
	for k := range s.buckets[bucket] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Stats returns the request counters.
func (s *Store) Stats() Stats {
	s.countMu.Lock()
	defer s.countMu.Unlock()
	st := Stats{Requests: s.requests.Load(), ByMethod: make(map[string]int64, len(s.byMethod))}
	for m, n := range s.byMethod {
		st.ByMethod[m] = n
	}
	return st
}

// defaultContentType is what S3 records for an object uploaded without a Content-Type.
const defaultContentType = "binary/octet-stream"

// subresources are bucket or object sub-resources this store does not implement; a request
// naming one gets NotImplemented instead of being mistaken for a plain object operation.
var subresources = map[string]bool{
	"accelerate": true, "acl": true, "analytics": true, "cors": true, "delete": true,
	"encryption": true, "intelligent-tiering": true, "inventory": true, "legal-hold": true,
	"lifecycle": true, "location": true, "logging": true, "metrics": true,
	"notification": true, "object-lock": true, "ownershipControls": true, "partNumber": true,
	"policy": true, "policyStatus": true, "publicAccessBlock": true, "replication": true,
	"requestPayment": true, "restore": true, "retention": true, "select": true,
	"tagging": true, "torrent": true, "uploadId": true, "uploads": true, "versionId": true,
	"versioning": true, "versions": true, "website": true, "attributes": true,
}

// ServeHTTP answers one S3 request.
func (s *Store) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.count(r.Method)
	rw := &reply{w: w, reqID: requestID(), hostID: hostID()}
	w.Header().Set("x-amz-request-id", rw.reqID)
	w.Header().Set("x-amz-id-2", rw.hostID)
	w.Header().Set("Server", "s3mem")

	bucket, key, ok := s.address(r)
	if !ok {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			s.listBuckets(rw, r)
			return
		}
		rw.error(r, http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.", nil)
		return
	}
	for name := range r.URL.Query() {
		if subresources[name] {
			rw.error(r, http.StatusNotImplemented, "NotImplemented", "A header you provided implies functionality that is not implemented", nil)
			return
		}
	}
	s.mu.RLock()
	_, exists := s.buckets[bucket]
	s.mu.RUnlock()
	if !exists {
		rw.error(r, http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist", [][2]string{{"BucketName", bucket}})
		return
	}
	if key == "" {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			s.listObjects(rw, r, bucket)
		default:
			rw.error(r, http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.", nil)
		}
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.getObject(rw, r, bucket, key)
	case http.MethodPut:
		s.putObject(rw, r, bucket, key)
	case http.MethodDelete:
		s.mu.Lock()
		delete(s.buckets[bucket], key)
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent) // S3 answers 204 whether or not the key existed
	default:
		rw.error(r, http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.", nil)
	}
}

func (s *Store) count(method string) {
	s.requests.Add(1)
	s.countMu.Lock()
	s.byMethod[method]++
	s.countMu.Unlock()
}

// address finds the bucket and key of a request; ok is false for the service endpoint.
func (s *Store) address(r *http.Request) (bucket, key string, ok bool) {
	host := strings.ToLower(r.Host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(host, ".")
	for _, suf := range s.suffixes {
		if b, found := strings.CutSuffix(host, suf); found && b != "" {
			return b, strings.TrimPrefix(r.URL.Path, "/"), true
		}
	}
	if !s.opts.PathStyle {
		return "", "", false
	}
	p := strings.TrimPrefix(r.URL.Path, "/")
	if p == "" {
		return "", "", false
	}
	bucket, key, _ = strings.Cut(p, "/")
	return bucket, key, true
}

func (s *Store) getObject(rw *reply, r *http.Request, bucket, key string) {
	obj, ok := s.Get(bucket, key)
	if !ok {
		rw.error(r, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.", [][2]string{{"Key", key}})
		return
	}
	h := rw.w.Header()
	h.Set("Content-Type", obj.ContentType)
	h.Set("ETag", obj.ETag)
	h.Set("Accept-Ranges", "bytes")
	for name, v := range obj.Headers {
		h.Set(name, v)
	}
	for name, v := range obj.Meta {
		h.Set("x-amz-meta-"+name, v)
	}
	// ServeContent brings S3's Range, If-Match, If-None-Match and If-Modified-Since handling.
	http.ServeContent(rw.w, r, "", obj.LastModified, bytes.NewReader(obj.Body))
}

func (s *Store) putObject(rw *reply, r *http.Request, bucket, key string) {
	if r.ContentLength > s.opts.MaxObjectSize {
		rw.error(r, http.StatusBadRequest, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size", nil)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, s.opts.MaxObjectSize+1))
	if err != nil {
		rw.error(r, http.StatusBadRequest, "IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header.", nil)
		return
	}
	if int64(len(body)) > s.opts.MaxObjectSize {
		rw.error(r, http.StatusBadRequest, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size", nil)
		return
	}
	if want := r.Header.Get("Content-MD5"); want != "" {
		sum := md5.Sum(body)
		if want != base64.StdEncoding.EncodeToString(sum[:]) {
			rw.error(r, http.StatusBadRequest, "BadDigest", "The Content-MD5 you specified did not match what we received.", nil)
			return
		}
	}
	obj := &Object{Body: body, ContentType: r.Header.Get("Content-Type"), ETag: etag(body), Meta: map[string]string{}, Headers: map[string]string{}, LastModified: s.opts.Now().UTC().Truncate(time.Second)}
	if obj.ContentType == "" {
		obj.ContentType = defaultContentType
	}
	for name, vs := range r.Header {
		if m, ok := strings.CutPrefix(strings.ToLower(name), "x-amz-meta-"); ok && m != "" {
			obj.Meta[m] = strings.Join(vs, ",")
		}
	}
	for _, name := range storedHeaders {
		if v := r.Header.Get(name); v != "" {
			obj.Headers[name] = v
		}
	}
	s.mu.Lock()
	// S3's conditional writes: If-Match must name the current ETag (a missing object is
	// NoSuchKey), If-None-Match: * wants no object yet. Checked and written under one lock.
	cur, exists := s.buckets[bucket][key]
	if im := r.Header.Get("If-Match"); im != "" && !exists {
		s.mu.Unlock()
		rw.error(r, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.", [][2]string{{"Key", key}})
		return
	} else if im != "" && im != cur.ETag && im != "*" || r.Header.Get("If-None-Match") == "*" && exists {
		cond := "If-Match"
		if im == "" {
			cond = "If-None-Match"
		}
		s.mu.Unlock()
		rw.error(r, http.StatusPreconditionFailed, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold", [][2]string{{"Condition", cond}})
		return
	}
	s.buckets[bucket][key] = obj
	s.mu.Unlock()
	rw.w.Header().Set("ETag", obj.ETag)
	rw.w.Header().Set("Content-Length", "0")
	rw.w.WriteHeader(http.StatusOK)
}

type listBucketResult struct {
	XMLName     xml.Name         `xml:"ListBucketResult"`
	Xmlns       string           `xml:"xmlns,attr"`
	Name        string           `xml:"Name"`
	Prefix      string           `xml:"Prefix"`
	KeyCount    *int             `xml:"KeyCount,omitempty"`
	MaxKeys     int              `xml:"MaxKeys"`
	IsTruncated bool             `xml:"IsTruncated"`
	Contents    []listObjectItem `xml:"Contents"`
}

type listObjectItem struct {
	Key          string `xml:"Key"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int    `xml:"Size"`
	StorageClass string `xml:"StorageClass"`
}

// listObjects is a minimal ListObjects (v1, or v2 with list-type=2): prefix and max-keys are
// honoured, delimiters and continuation are not.
func (s *Store) listObjects(rw *reply, r *http.Request, bucket string) {
	q := r.URL.Query()
	maxKeys := 1000
	if v := q.Get("max-keys"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			rw.error(r, http.StatusBadRequest, "InvalidArgument", "Provided max-keys not an integer or within integer range", [][2]string{{"ArgumentName", "max-keys"}, {"ArgumentValue", v}})
			return
		}
		maxKeys = min(n, 1000)
	}
	res := listBucketResult{Xmlns: "http://s3.amazonaws.com/doc/2006-03-01/", Name: bucket, Prefix: q.Get("prefix"), MaxKeys: maxKeys}
	s.mu.RLock()
	objs := s.buckets[bucket]
	keys := make([]string, 0, len(objs))
	for k := range objs {
		if strings.HasPrefix(k, res.Prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if len(keys) > maxKeys {
		keys, res.IsTruncated = keys[:maxKeys], true
	}
	for _, k := range keys {
		o := objs[k]
		res.Contents = append(res.Contents, listObjectItem{Key: k, LastModified: o.LastModified.Format("2006-01-02T15:04:05.000Z"), ETag: o.ETag, Size: len(o.Body), StorageClass: "STANDARD"})
	}
	s.mu.RUnlock()
	if q.Get("list-type") == "2" {
		n := len(res.Contents)
		res.KeyCount = &n
	}
	rw.xml(r, http.StatusOK, res)
}

type listAllMyBucketsResult struct {
	XMLName xml.Name     `xml:"ListAllMyBucketsResult"`
	Xmlns   string       `xml:"xmlns,attr"`
	Buckets []bucketItem `xml:"Buckets>Bucket"`
}

type bucketItem struct {
	Name string `xml:"Name"`
}

func (s *Store) listBuckets(rw *reply, r *http.Request) {
	res := listAllMyBucketsResult{Xmlns: "http://s3.amazonaws.com/doc/2006-03-01/"}
	s.mu.RLock()
	for name := range s.buckets {
		res.Buckets = append(res.Buckets, bucketItem{Name: name})
	}
	s.mu.RUnlock()
	sort.Slice(res.Buckets, func(i, j int) bool { return res.Buckets[i].Name < res.Buckets[j].Name })
	rw.xml(r, http.StatusOK, res)
}

// reply writes S3-style responses for one request.
type reply struct {
	w      http.ResponseWriter
	reqID  string
	hostID string
}

func (rw *reply) xml(r *http.Request, status int, v any) {
	body, err := xml.Marshal(v)
	if err != nil {
		rw.error(r, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.", nil)
		return
	}
	rw.write(r, status, append([]byte(xml.Header), body...))
}

// error writes an S3 error document; extra elements go between Message and RequestId.
func (rw *reply) error(r *http.Request, status int, code, message string, extra [][2]string) {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString("<Error><Code>")
	_ = xml.EscapeText(&b, []byte(code)) // a bytes.Buffer does not fail
	b.WriteString("</Code><Message>")
	_ = xml.EscapeText(&b, []byte(message))
	b.WriteString("</Message>")
	for _, e := range extra {
		b.WriteString("<" + e[0] + ">")
		_ = xml.EscapeText(&b, []byte(e[1]))
		b.WriteString("</" + e[0] + ">")
	}
	b.WriteString("<RequestId>" + rw.reqID + "</RequestId><HostId>" + rw.hostID + "</HostId></Error>")
	rw.write(r, status, b.Bytes())
}

func (rw *reply) write(r *http.Request, status int, body []byte) {
	h := rw.w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	rw.w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = rw.w.Write(body)
	}
}

func etag(body []byte) string {
	sum := md5.Sum(body)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

// requestID returns 16 upper-case hex digits, the shape of S3's x-amz-request-id.
func requestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// hostID returns a base64 string of the length S3 uses for x-amz-id-2.
func hostID() string {
	var b [57]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// ErrNoBucket is wrapped by Put's error for a bucket the store does not hold.
var ErrNoBucket = errors.New("no such bucket")
