package controlplane

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// botocoreScript drives the control plane with boto3 (botocore's signer and checksums) and
// the AWS CLI, and prints one JSON object of what it saw.
const botocoreScript = `
import json, os, subprocess, sys, urllib.request
import boto3, botocore
from botocore.config import Config

url, key, secret, rules_file = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=key,
                  aws_secret_access_key=secret, config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
out = {"botocore": botocore.__version__}
rules = {"CORSRules": [{"ID": "boto", "AllowedOrigins": ["https://boto.example"], "AllowedMethods": ["GET", "HEAD"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 60}]}
s3.put_bucket_cors(Bucket="website", CORSConfiguration=rules)
out["get"] = s3.get_bucket_cors(Bucket="website")["CORSRules"]
# For a custom endpoint botocore presigns with SigV2 unless told; the control plane takes
# SigV4 only.
v4 = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=key,
                  aws_secret_access_key=secret, config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
presigned = v4.generate_presigned_url("get_bucket_cors", Params={"Bucket": "website"}, ExpiresIn=60)
try:
    out["presigned"] = urllib.request.urlopen(presigned).read().decode()
except urllib.error.HTTPError as e:
    out["presigned"] = presigned + " " + e.read().decode()
bad = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=key,
                   aws_secret_access_key="wrong", config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
try:
    bad.delete_bucket_cors(Bucket="website")
    out["wrong_secret"] = "accepted"
except botocore.exceptions.ClientError as e:
    out["wrong_secret"] = e.response["Error"]["Code"]
s3.delete_bucket_cors(Bucket="website")
try:
    s3.get_bucket_cors(Bucket="website")
    out["after_delete"] = "found"
except botocore.exceptions.ClientError as e:
    out["after_delete"] = e.response["Error"]["Code"]
env = dict(os.environ, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret, AWS_DEFAULT_REGION="us-east-1")
cli = subprocess.run([os.path.join(os.path.dirname(sys.executable), "aws"), "s3api", "put-bucket-cors", "--endpoint-url", url,
                      "--bucket", "media", "--cors-configuration", "file://" + rules_file], env=env, capture_output=True, text=True)
out["cli"] = [cli.returncode, cli.stderr]
print(json.dumps(out))
`

// TestBotocore: boto3 and the AWS CLI (from PyPI) sign, checksum and parse as the control
// plane expects: put, get, presigned get, delete, and a wrong secret refused.
func TestBotocore(t *testing.T) {
	py := testenv.Python(t, []string{"boto3", "awscli"}, []string{"boto3", "awscli"})
	tp := newTestPlane(t, testSeed, nil)
	dir := t.TempDir()
	script := filepath.Join(dir, "drive.py")
	rules := filepath.Join(dir, "rules.json")
	if err := os.WriteFile(script, []byte(botocoreScript), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rules, []byte(`{"CORSRules": [{"AllowedOrigins": ["https://cli.example"], "AllowedMethods": ["PUT"]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, script, tp.url, adminKey, adminSecret, rules).Output()
	if err != nil {
		var stderr []byte
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		t.Fatalf("%v\n%s\n%s", err, out, stderr)
	}
	var got struct {
		Botocore    string                `json:"botocore"`
		Get         []struct{ ID string } `json:"get"`
		Presigned   string                `json:"presigned"`
		WrongSecret string                `json:"wrong_secret"`
		AfterDelete string                `json:"after_delete"`
		CLI         []any                 `json:"cli"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("botocore %s", got.Botocore)
	if len(got.Get) != 1 || got.Get[0].ID != "boto" {
		t.Errorf("get_bucket_cors after put_bucket_cors: %+v", got.Get)
	}
	if !strings.Contains(got.Presigned, "<AllowedOrigin>https://boto.example</AllowedOrigin>") {
		t.Errorf("presigned get_bucket_cors: %s", got.Presigned)
	}
	if got.WrongSecret != "SignatureDoesNotMatch" {
		t.Errorf("wrong secret: %s", got.WrongSecret)
	}
	if got.AfterDelete != "NoSuchCORSConfiguration" {
		t.Errorf("after delete_bucket_cors: %s", got.AfterDelete)
	}
	if len(got.CLI) != 2 || got.CLI[0] != float64(0) {
		t.Errorf("aws s3api put-bucket-cors: %v", got.CLI)
	}
	if b := tp.cp.Get("media"); b == nil || b.Rules[0].AllowedOrigins[0] != "https://cli.example" {
		t.Errorf("the AWS CLI's rules are not served: %+v", b)
	}
}
