package controlplane

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/testing/cputime"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// memStore keeps the state in memory: the benchmark's baseline without fsync.
type memStore struct{ st *State }

func (m *memStore) Load() (*State, error) {
	if m.st == nil {
		return &State{Buckets: map[string]*Record{}}, nil
	}
	return m.st, nil
}
func (m *memStore) Save(st *State) error { m.st = st; return nil }

// BenchmarkPutBucketCors is one signed PutBucketCors through the handler: signature check,
// digest, validation, store, merged document and its xDS resource (a policy image over
// ImageThreshold), by store and number of buckets (testenv.StressConfig: three rules each).
func BenchmarkPutBucketCors(b *testing.B) {
	creds, _ := ParseCredentials([]byte(testCredentials))
	body := []byte(rulesXML)
	sum := md5.Sum(body)
	for _, store := range []string{"memory", "file"} {
		for _, n := range []int{10, 10000} {
			b.Run(fmt.Sprintf("store=%s/buckets=%d", store, n), func(b *testing.B) {
				var st Store = &memStore{}
				if store == "file" {
					st = &FileStore{Path: filepath.Join(b.TempDir(), "state.json")}
				}
				x := NewXDS(context.Background(), Plugin{}, nil, nil)
				push := func(doc []byte, cfg *evaluator.Config, v uint64) {
					if err := x.Push(doc, cfg, v); err != nil {
						b.Fatal(err)
					}
				}
				cp, err := New(Options{Seed: testenv.StressConfig(n), Store: st, Keys: creds, Push: push})
				if err != nil {
					b.Fatal(err)
				}
				req := httptest.NewRequest("PUT", "http://127.0.0.1:8090/b1?cors", bytes.NewReader(body))
				req.Header.Set("Content-MD5", base64.StdEncoding.EncodeToString(sum[:]))
				req.Header.Set("X-Amz-Content-Sha256", unsignedPayload)
				s := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
				if err := s.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: adminKey, SecretAccessKey: adminSecret}, req, unsignedPayload, "s3", "us-east-1", time.Now()); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.ResetTimer()
				start := cputime.Process()
				for b.Loop() {
					r := req.Clone(context.Background())
					r.Body = readCloser{bytes.NewReader(body)}
					w := httptest.NewRecorder()
					cp.ServeHTTP(w, r)
					if w.Code != 200 {
						b.Fatalf("%d %s", w.Code, w.Body)
					}
				}
				cputime.Report(b, start)
			})
		}
	}
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// BenchmarkXDSPush is the cost of handing one parsed configuration to the xDS cache (the
// ECDS resource: the document, or over ImageThreshold its compiled policy image, wrapped in
// the wasm filter's configuration), by number of buckets (testenv.StressConfig).
func BenchmarkXDSPush(b *testing.B) {
	for _, n := range []int{10, 10000} {
		b.Run(fmt.Sprintf("buckets=%d", n), func(b *testing.B) {
			x := NewXDS(context.Background(), Plugin{}, nil, nil)
			doc := testenv.StressConfig(n)
			pol, err := evaluator.Load(doc)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			var v uint64
			start := cputime.Process()
			for b.Loop() {
				v++
				if err := x.Push(doc, pol.Config(), v); err != nil {
					b.Fatal(err)
				}
			}
			cputime.Report(b, start)
		})
	}
}
