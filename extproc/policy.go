package extproc

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/configfile"
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

// LoadConfigFile reads, parses, validates and compiles the s3cors configuration at path, JSON
// or YAML as the file name or content says, read as every s3cors surface reads a
// configuration file (internal/configfile).
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
	doc, err := configfile.JSON(name, data)
	if err != nil {
		// The only error: YAML that does not parse. Named as the server always named it.
		return nil, fmt.Errorf("extproc: config %q: invalid YAML: %w", name, errors.Unwrap(err))
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
