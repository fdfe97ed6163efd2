package controlplane

import (
	"fmt"
	"strings"
	"testing"
)

// TestCredentials: the file's mistakes are errors naming the key, and printing keys never
// shows a secret.
func TestCredentials(t *testing.T) {
	creds, err := ParseCredentials([]byte(testCredentials))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprint(creds), fmt.Sprintf("%v %+v", *creds[adminKey], creds[siteKey])} {
		if strings.Contains(s, adminSecret) || strings.Contains(s, siteSecret) || !strings.Contains(s, siteKey) {
			t.Fatalf("printed keys: %s", s)
		}
	}
	for _, tc := range []struct{ doc, want string }{
		{`{"keys": []}`, "no keys"},
		{`{"keys": [{"accessKeyId": "", "secretAccessKey": "s", "buckets": ["*"]}]}`, "keys[0].accessKeyId is empty"},
		{`{"keys": [{"accessKeyId": "A", "secretAccessKey": "", "buckets": ["*"]}]}`, `keys[0] ("A"): secretAccessKey is empty`},
		{`{"keys": [{"accessKeyId": "A", "secretAccessKey": "s", "buckets": ["*"]}, {"accessKeyId": "A", "secretAccessKey": "t", "buckets": ["*"]}]}`, `keys[1]: access key "A" appears twice`},
		{`{"keys": [{"accessKeyId": "A", "secret": "s", "buckets": ["*"]}]}`, `unknown field "secret"`},
	} {
		if _, err := ParseCredentials([]byte(tc.doc)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.doc, err, tc.want)
		}
	}
}
