package extproc

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/s3cors/s3cors/evaluator"
)

// LoadedPolicy is one compiled configuration together with where it came from. It is
// immutable once stored in a [PolicyHolder].
type LoadedPolicy struct {
	// Policy is the compiled configuration every stream evaluates against.
	Policy *evaluator.Policy
	// Hash is "sha256:" and the hex SHA-256 of the configuration file's bytes as read, so that
	// `sha256sum FILE` on the host tells which file is live.
	Hash string
	// Source is the file the policy was read from ("" when built in memory).
	Source string
	// LoadedAt is when the policy was compiled.
	LoadedAt time.Time
}

// PolicyHolder holds the live policy. Streams read it once, at their request headers, with a
// single atomic load; a reload replaces it with a single atomic store, so a stream in flight
// keeps the policy it started with and no stream ever sees half a configuration.
//
// The zero value holds no policy; [Server] refuses streams until one is stored.
type PolicyHolder struct {
	cur atomic.Pointer[LoadedPolicy]
}

// NewPolicyHolder returns a holder with p live.
func NewPolicyHolder(p *LoadedPolicy) *PolicyHolder {
	h := &PolicyHolder{}
	h.Store(p)
	return h
}

// Load returns the live policy, or nil when none was ever stored.
func (h *PolicyHolder) Load() *LoadedPolicy { return h.cur.Load() }

// Store makes p live and returns the policy it replaced (nil for the first).
func (h *PolicyHolder) Store(p *LoadedPolicy) *LoadedPolicy { return h.cur.Swap(p) }

// LoadConfigFile reads, parses, validates and compiles the s3cors configuration at path. The
// format follows the file name: ".json" is JSON, ".yaml" and ".yml" are YAML, anything else is
// JSON when its first non-blank byte is '{' and YAML otherwise. YAML is converted to the JSON
// document that says the same (keys as written and in order, a key given twice an error; see
// yamlToJSON) and then read exactly as JSON is, so both spell the same keys (see the shared
// configuration contract).
//
// A configuration that PutBucketCors or s3cors would refuse yields an error wrapping the
// *evaluator.ValidationError, whose message lists every problem with its path.
func LoadConfigFile(path string) (*LoadedPolicy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("extproc: reading config: %w", err)
	}
	return LoadConfig(path, data)
}

// LoadConfig is [LoadConfigFile] for bytes already read; name picks the format as the file
// name does there and labels errors.
func LoadConfig(name string, data []byte) (*LoadedPolicy, error) {
	doc, err := ConfigJSON(name, data)
	if err != nil {
		return nil, err
	}
	pol, err := evaluator.Load(doc)
	if err != nil {
		return nil, fmt.Errorf("extproc: config %q: %w", name, err)
	}
	sum := sha256.Sum256(data)
	return &LoadedPolicy{
		Policy:   pol,
		Hash:     "sha256:" + hex.EncodeToString(sum[:]),
		Source:   name,
		LoadedAt: time.Now(),
	}, nil
}

// ConfigJSON returns the configuration document in data as JSON, converting YAML when name or
// content says it is YAML (see [LoadConfigFile]). JSON is returned unchanged but for a leading
// UTF-8 byte-order mark, which some Windows editors write and JSON does not allow.
//
// A YAML file with no document in it (nothing, blanks, comments, a bare "---") is returned as
// no bytes at all, not as the null YAML reads it as: evaluator.ParseConfig then reports it as
// an empty configuration, as it does an empty JSON file, where null would be refused as "not
// a JSON object". A document that says null ("null", "~") stays null.
func ConfigJSON(name string, data []byte) ([]byte, error) {
	if !isYAML(name, data) {
		return bytes.TrimPrefix(data, []byte("\ufeff")), nil
	}
	if len(bytes.TrimLeft(data, " \t\r\n\ufeff")) == 0 {
		return []byte{}, nil // a tab, blank as it is, is no YAML
	}
	doc, err := yamlToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("extproc: config %q: invalid YAML: %w", name, err)
	}
	if string(doc) == "null" && yamlBlank(data) {
		return []byte{}, nil
	}
	return doc, nil
}

// yamlBlank reports YAML that holds no value: no document at all, or one that writes nothing
// after its "---". It is asked only of data that already converted to null, so the second
// read costs nothing worth saving.
func yamlBlank(data []byte) bool {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		return errors.Is(err, io.EOF)
	}
	if len(doc.Content) != 1 {
		return len(doc.Content) == 0
	}
	n := doc.Content[0]
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null" && n.Value == ""
}

func isYAML(name string, data []byte) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".json":
		return false
	case ".yaml", ".yml":
		return true
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	return len(trimmed) == 0 || trimmed[0] != '{'
}
