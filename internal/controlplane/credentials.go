package controlplane

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
)

// Key is one access key the control plane accepts: its secret and the buckets it may manage.
type Key struct {
	AccessKeyID     string   `json:"accessKeyId"`
	SecretAccessKey string   `json:"secretAccessKey"`
	Buckets         []string `json:"buckets"` // bucket names, or "*" for every bucket
}

// String never shows the secret, so a logged Key leaks nothing.
func (k Key) String() string { return fmt.Sprintf("key %q (buckets %q)", k.AccessKeyID, k.Buckets) }

// may reports whether the key may manage bucket.
func (k *Key) may(bucket string) bool {
	return slices.Contains(k.Buckets, "*") || slices.Contains(k.Buckets, bucket)
}

// Credentials maps access key ids to keys.
type Credentials map[string]*Key

// ParseCredentials reads a credentials file:
//
//	{"keys": [{"accessKeyId": "AKIA...", "secretAccessKey": "...", "buckets": ["website"]}]}
//
// Unknown members, an empty id or secret, a key without buckets and a repeated id are
// errors naming the key; a secret never appears in an error.
func ParseCredentials(data []byte) (Credentials, error) {
	var doc struct {
		Keys []Key `json:"keys"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("controlplane: credentials: %w", err)
	}
	if len(doc.Keys) == 0 {
		return nil, fmt.Errorf("controlplane: credentials: no keys: want {\"keys\": [{\"accessKeyId\": ..., \"secretAccessKey\": ..., \"buckets\": [...]}]}")
	}
	creds := make(Credentials, len(doc.Keys))
	for i := range doc.Keys {
		k := &doc.Keys[i]
		switch {
		case k.AccessKeyID == "":
			return nil, fmt.Errorf("controlplane: credentials: keys[%d].accessKeyId is empty", i)
		case k.SecretAccessKey == "":
			return nil, fmt.Errorf("controlplane: credentials: keys[%d] (%q): secretAccessKey is empty", i, k.AccessKeyID)
		case len(k.Buckets) == 0:
			return nil, fmt.Errorf("controlplane: credentials: keys[%d] (%q): buckets is empty: name the buckets it may manage, or \"*\"", i, k.AccessKeyID)
		}
		if _, dup := creds[k.AccessKeyID]; dup {
			return nil, fmt.Errorf("controlplane: credentials: keys[%d]: access key %q appears twice", i, k.AccessKeyID)
		}
		creds[k.AccessKeyID] = k
	}
	return creds, nil
}
