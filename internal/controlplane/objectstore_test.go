package controlplane

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// conditionalStore is a one-bucket S3 store with S3's conditional writes: PUT with If-Match
// or If-None-Match: * answers 412 PreconditionFailed when the condition fails.
type conditionalStore struct {
	mu      sync.Mutex
	objects map[string][]byte
	puts    int
	refused int
}

func etagOf(b []byte) string {
	sum := md5.Sum(b)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

func (s *conditionalStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := r.URL.Path
	cur, exists := s.objects[key]
	switch r.Method {
	case http.MethodGet:
		if !exists {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(404)
			_, _ = io.WriteString(w, `<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>`)
			return
		}
		w.Header().Set("ETag", etagOf(cur))
		_, _ = w.Write(cur)
	case http.MethodPut:
		body, _ := io.ReadAll(r.Body)
		im, inm := r.Header.Get("If-Match"), r.Header.Get("If-None-Match")
		if im != "" && (!exists || im != etagOf(cur)) || inm == "*" && exists {
			s.refused++
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(412)
			_, _ = io.WriteString(w, `<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>`)
			return
		}
		s.objects[key] = body
		s.puts++
		w.Header().Set("ETag", etagOf(body))
	default:
		w.WriteHeader(405)
	}
}

func newObjectStore(t *testing.T, url string) *ObjectStore {
	t.Helper()
	c := s3.New(s3.Options{
		BaseEndpoint: aws.String(url), UsePathStyle: true, Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("store", "store-secret", ""), RetryMaxAttempts: 1,
	})
	return &ObjectStore{Client: c, Bucket: "s3cors-state", Key: "controlplane/state.json"}
}

// TestReplicasNeverLoseAnUpdate: two control planes on one state object take changes at the
// same time; conditional writes make each re-apply its change to the other's, so every
// acknowledged change is in the final state, and each replica serves all of them after a
// Refresh.
func TestReplicasNeverLoseAnUpdate(t *testing.T) {
	fake := &conditionalStore{objects: map[string][]byte{}}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	seed := `{"buckets": {` + func() string {
		s := ""
		for i := range 20 {
			if i > 0 {
				s += ","
			}
			s += fmt.Sprintf(`"b%d": null`, i)
		}
		return s
	}() + `}}`
	a := newTestPlane(t, seed, nil)
	b := newTestPlane(t, seed, nil)
	// Swap in the shared store (the test planes were built on files).
	for _, tp := range []*testPlane{a, b} {
		tp.cp.store = newObjectStore(t, srv.URL)
		if err := tp.cp.Refresh(); err != nil {
			t.Fatal(err)
		}
	}
	// Deterministic: b writes on a state a has already replaced.
	if err := putRules(t, a, "b0", "https://first.example"); err != nil {
		t.Fatal(err)
	}
	if err := putRules(t, b, "b1", "https://second.example"); err != nil {
		t.Fatal(err)
	}
	if fake.refused != 1 || b.cp.Get("b0") == nil {
		t.Fatalf("a stale replica's write: %d refused, b0 on b %+v; want 1 refused and b0 adopted", fake.refused, b.cp.Get("b0"))
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tp := a
			if i%2 == 1 {
				tp = b
			}
			if err := putRules(t, tp, fmt.Sprintf("b%d", i), fmt.Sprintf("https://o%d.example", i)); err != nil {
				t.Errorf("change %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	st, err := newObjectStore(t, srv.URL).Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Buckets) != 20 || st.Version != 22 {
		t.Fatalf("stored state: version %d, %d buckets, want 22 and 20 (a change was lost)", st.Version, len(st.Buckets))
	}
	for _, tp := range []*testPlane{a, b} {
		if err := tp.cp.Refresh(); err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			if got := tp.cp.Get(fmt.Sprintf("b%d", i)); got == nil || got.Rules[0].AllowedOrigins[0] != fmt.Sprintf("https://o%d.example", i) {
				t.Fatalf("replica does not serve change %d: %+v", i, got)
			}
		}
	}
	// The store down: 503, nothing acknowledged, nothing served.
	srv.Close()
	if code := apiCode(putRules(t, a, "b3", "https://while-down.example")); code != "ServiceUnavailable" {
		t.Fatalf("put with the store down: %q, want ServiceUnavailable", code)
	}
	if got := a.cp.Get("b3").Rules[0].AllowedOrigins[0]; got != "https://o3.example" {
		t.Fatalf("an unstored change is served: %s", got)
	}
	t.Logf("%d writes, %d refused by a condition and re-applied", fake.puts, fake.refused)
	if fake.refused == 0 {
		t.Log("no write conflicted this run; the interleaving did not race")
	}
}
