package e2e_test

// The ext_proc server taking its configuration from the control plane: the built
// `s3cors extproc --config-from` behind real Envoy (envoy/extproc.yaml) follows the changes
// made by PutBucketCors and DeleteBucketCors, as the wasm filter's Envoys do, with the
// configuration as JSON and, over controlplane.ImageThreshold, as the compiled policy image.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3cors/s3cors/internal/controlplane"
	"github.com/s3cors/s3cors/internal/testing/casetable"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// TestControlPlaneExtprocRealEnvoy: Envoy's ext_proc path answers preflights with the rules
// the control plane serves: a PutBucketCors replaces a bucket's rules whole, a
// DeleteBucketCors turns CORS off, and the daemon's live configuration is, byte for byte, the
// control plane's document (as JSON) or its compiled image (over the threshold: the daemon
// loads the BytesValue pushed).
func TestControlPlaneExtprocRealEnvoy(t *testing.T) {
	all := testenv.Envoys(t)
	envoy := all[len(all)-1]
	cli := realEnvoyCLI(t)
	const (
		notEnabled = "CORS is not enabled for this bucket."
		notAllowed = "This CORS request is not allowed."
	)
	for _, tc := range []struct {
		name   string
		seed   []byte
		bucket string
		image  bool
	}{
		// website has no rules in the seed: preflights are refused at first.
		{"json", []byte(cpSeed), "website", false},
		// b0 allows GET from any origin in the seed. 50,000 buckets make an image over
		// gRPC's default 4 MiB message limit, which Envoy does not have and the daemon
		// must not either.
		{"image", testenv.StressConfig(50000), "b0", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plane := startPlane(t, tc.seed, &controlplane.FileStore{Path: filepath.Join(t.TempDir(), "state.json")}, 0, "127.0.0.1:0", "127.0.0.1:0")
			p := startExtprocCLIFrom(t, cli, "info", "--config-from", plane.xds)
			store := startRealEnvoyStore(t, nil)
			env := startRealEnvoy(t, envoy.Path, realEnvoyBootstrap(t, "extproc.yaml", make([]casetable.Table, 1), store.addr, "", []string{p.grpcAddr}))
			addrs := []string{env.listeners["s3-0"]}
			hc := &http.Client{Timeout: 10 * time.Second}

			// live waits until the daemon's live configuration is what the control plane
			// serves now: its document, or the image compiled from it.
			live := func() {
				t.Helper()
				doc, _ := plane.cp.Document()
				if image := len(doc) > controlplane.ImageThreshold; image != tc.image {
					t.Fatalf("a %d-byte document: pushed as an image %v, want %v", len(doc), image, tc.image)
				}
				if tc.image {
					if doc = testenv.PolicyImage(t, doc); len(doc) <= 4<<20 {
						t.Fatalf("a %d-byte image is not over 4 MiB", len(doc))
					}
				}
				sum := sha256.Sum256(doc)
				p.awaitMetric(t, `s3cors_config_info{hash="sha256:`+hex.EncodeToString(sum[:])+`"`)
			}
			live()
			if tc.image {
				waitFor(t, hc, addrs, tc.bucket, "https://new.example", true, "")
			} else {
				waitFor(t, hc, addrs, tc.bucket, "https://new.example", false, notEnabled)
			}

			ctx := context.Background()
			sdk := cpClient(plane.api, cpSecret)
			if _, err := sdk.PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: aws.String(tc.bucket), CORSConfiguration: corsFor("https://new.example")}); err != nil {
				t.Fatalf("PutBucketCors: %v", err)
			}
			live()
			waitFor(t, hc, addrs, tc.bucket, "https://new.example", true, "")
			// The new rules replace the old whole: no other origin is allowed now.
			if status, body := cpPreflight(t, hc, addrs[0], tc.bucket, "https://other.example"); status != 403 || !strings.Contains(body, notAllowed) {
				t.Fatalf("after PutBucketCors a preflight from another origin: %d %s", status, body)
			}

			if _, err := sdk.DeleteBucketCors(ctx, &s3.DeleteBucketCorsInput{Bucket: aws.String(tc.bucket)}); err != nil {
				t.Fatalf("DeleteBucketCors: %v", err)
			}
			live()
			waitFor(t, hc, addrs, tc.bucket, "https://new.example", false, notEnabled)
		})
	}
}
