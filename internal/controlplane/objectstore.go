package controlplane

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// ErrConflict is a Save refused because the stored state changed since it was loaded (another
// replica wrote first). The caller reloads and applies its change again.
var ErrConflict = errors.New("controlplane: the stored state changed since it was read")

// ObjectStore keeps the state as one object in a bucket of the S3 store itself, written with
// conditional requests (If-Match on the ETag read, If-None-Match: * for the first write), so
// replicas sharing it never overwrite each other's changes: a write based on an old state
// fails with ErrConflict instead.
type ObjectStore struct {
	Client *s3.Client
	Bucket string
	Key    string
	// Timeout bounds each request (default 10s).
	Timeout time.Duration

	mu   sync.Mutex
	etag string // of the state last read or written; "" for none yet
}

func (s *ObjectStore) ctx() (context.Context, context.CancelFunc) {
	d := s.Timeout
	if d <= 0 {
		d = 10 * time.Second
	}
	return context.WithTimeout(context.Background(), d)
}

// Load reads the state object; a missing object is an empty state.
func (s *ObjectStore) Load() (*State, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	out, err := s.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(s.Key)})
	if code := apiErrorCode(err); code == "NoSuchKey" {
		s.setETag("")
		return &State{Buckets: map[string]*Record{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("controlplane: state object s3://%s/%s: %w", s.Bucket, s.Key, err)
	}
	defer func() { _ = out.Body.Close() }()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fmt.Errorf("controlplane: state object s3://%s/%s: %w", s.Bucket, s.Key, err)
	}
	st, err := decodeState(data)
	if err != nil {
		return nil, fmt.Errorf("controlplane: state object s3://%s/%s: %w", s.Bucket, s.Key, err)
	}
	s.setETag(aws.ToString(out.ETag))
	return st, nil
}

// Save writes the state if the object is still the one last read or written.
func (s *ObjectStore) Save(st *State) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("controlplane: state: %w", err)
	}
	in := &s3.PutObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(s.Key), Body: bytes.NewReader(data), ContentType: aws.String("application/json")}
	s.mu.Lock()
	if s.etag == "" {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(s.etag)
	}
	s.mu.Unlock()
	ctx, cancel := s.ctx()
	defer cancel()
	out, err := s.Client.PutObject(ctx, in)
	switch code := apiErrorCode(err); code {
	case "":
	case "PreconditionFailed", "ConditionalRequestConflict":
		return ErrConflict
	default:
		return fmt.Errorf("controlplane: state object s3://%s/%s: %w", s.Bucket, s.Key, err)
	}
	s.setETag(aws.ToString(out.ETag))
	return nil
}

func (s *ObjectStore) setETag(e string) {
	s.mu.Lock()
	s.etag = e
	s.mu.Unlock()
}

func apiErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if err != nil {
		return "error"
	}
	return ""
}
