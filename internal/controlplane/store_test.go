package controlplane

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func putRules(t *testing.T, tp *testPlane, bucket, origin string) error {
	t.Helper()
	rules := &types.CORSConfiguration{CORSRules: []types.CORSRule{{AllowedOrigins: []string{origin}, AllowedMethods: []string{"GET"}}}}
	_, err := tp.client(adminKey, adminSecret).PutBucketCors(context.Background(), &s3.PutBucketCorsInput{Bucket: aws.String(bucket), CORSConfiguration: rules})
	return err
}

// TestStoreFailureMidWrite: a failure (crash, full disk) after any step of the atomic
// replace is a 503 with nothing acknowledged, and the file holds the old state or the new
// one, whole, never a mix; a control plane restarted on it serves what it holds.
func TestStoreFailureMidWrite(t *testing.T) {
	for _, step := range []string{"write", "sync", "rename"} {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			store := &FileStore{Path: filepath.Join(dir, "state.json")}
			tp := newTestPlane(t, testSeed, store)
			if err := putRules(t, tp, "website", "https://first.example"); err != nil {
				t.Fatal(err)
			}
			store.step = func(s string) error {
				if s == step {
					return errors.New("injected failure after " + s)
				}
				return nil
			}
			err := putRules(t, tp, "website", "https://second.example")
			if code := apiCode(err); code != "ServiceUnavailable" {
				t.Fatalf("put with a failing store: %q, want ServiceUnavailable", code)
			}
			if got := tp.cp.Get("website").Rules[0].AllowedOrigins[0]; got != "https://first.example" {
				t.Fatalf("unacknowledged change served: %s", got)
			}
			if n := testutil.ToFloat64(tp.cp.Metrics().storeFailures); n != 1 {
				t.Fatalf("store failures counted: %v, want 1", n)
			}
			store.step = nil
			st, err := store.Load()
			if err != nil {
				t.Fatalf("state after a failed write: %v", err)
			}
			cors := st.Buckets["website"].CORS
			// Before the rename the old file stands; after it the new one, whole.
			wantNew := step == "rename"
			if strings.Contains(cors, "second") != wantNew || (!wantNew && !strings.Contains(cors, "first")) {
				t.Fatalf("after a failure at %s the file holds %s", step, cors)
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if e.Name() != "state.json" && step != "rename" {
					t.Errorf("left behind: %s", e.Name())
				}
			}
			restarted := newTestPlane(t, testSeed, &FileStore{Path: store.Path})
			if got := restarted.cp.Get("website").Rules[0].AllowedOrigins[0]; !strings.Contains(cors, got) {
				t.Fatalf("restarted control plane serves %s, file holds %s", got, cors)
			}
		})
	}
}

// TestSeedAndAPI: an API change outlives a restart with the same seed; editing the seed's
// entry for that bucket gives the bucket back to the seed; edits to other buckets do not.
func TestSeedAndAPI(t *testing.T) {
	store := &FileStore{Path: filepath.Join(t.TempDir(), "state.json")}
	tp := newTestPlane(t, testSeed, store)
	if err := putRules(t, tp, "website", "https://api.example"); err != nil {
		t.Fatal(err)
	}
	if err := putRules(t, tp, "media", "https://api-media.example"); err != nil {
		t.Fatal(err)
	}
	origin := func(tp *testPlane, bucket string) string {
		b := tp.cp.Get(bucket)
		if b == nil {
			return "none"
		}
		return b.Rules[0].AllowedOrigins[0]
	}

	same := newTestPlane(t, testSeed, &FileStore{Path: store.Path})
	if got := origin(same, "website"); got != "https://api.example" {
		t.Fatalf("after a restart with the same seed: %s, want the API's rules", got)
	}
	// Reformatting the seed is no edit.
	reformatted := strings.ReplaceAll(testSeed, `"AllowedOrigins": [`, `"AllowedOrigins":[`)
	if got := origin(newTestPlane(t, reformatted, &FileStore{Path: store.Path}), "website"); got != "https://api.example" {
		t.Fatalf("after reformatting the seed: %s, want the API's rules", got)
	}

	edited := strings.Replace(testSeed, "https://seed.example", "https://seed-v2.example", 1)
	after := newTestPlane(t, edited, &FileStore{Path: store.Path})
	if got := origin(after, "website"); got != "https://seed-v2.example" {
		t.Fatalf("after editing the seed's entry: %s, want the seed's", got)
	}
	if got := origin(after, "media"); got != "https://api-media.example" {
		t.Fatalf("a bucket whose seed entry did not change: %s, want the API's", got)
	}
	// The seed's win is stored: going back to the old seed does not resurrect the API rules.
	if got := origin(newTestPlane(t, testSeed, &FileStore{Path: store.Path}), "website"); got != "https://seed.example" {
		t.Fatalf("the overridden API change came back: %s", got)
	}
	// A bucket dropped from the seed is unknown, and its API record goes with it.
	dropped := newTestPlane(t, strings.Replace(testSeed, `"fonts": null,`, "", 1), &FileStore{Path: store.Path})
	if dropped.cp.Known("fonts") {
		t.Fatal("a bucket removed from the seed is still known")
	}
}

// TestStateFileDamaged: a state file that does not parse stops the control plane with an
// error naming the file, rather than dropping acknowledged changes.
func TestStateFileDamaged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	if err := os.WriteFile(path, []byte(`{"version": 3, "buckets": {`), 0o600); err != nil {
		t.Fatal(err)
	}
	creds, _ := ParseCredentials([]byte(testCredentials))
	_, err := New(Options{Seed: []byte(testSeed), Store: &FileStore{Path: path}, Keys: creds})
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("damaged state file: %v", err)
	}
}
