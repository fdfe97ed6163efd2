package controlplane

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/s3cors/s3cors/evaluator"
)

// Options configure a ControlPlane.
type Options struct {
	// Seed is the s3cors configuration (JSON) the control plane starts from: its buckets are
	// the buckets it knows, with their rules until the API changes them.
	Seed []byte
	// Store keeps what the API changed; required.
	Store Store
	// Keys are the access keys allowed to call the API.
	Keys Credentials
	// Region is the region clients sign for (default us-east-1).
	Region string
	// Now is the clock signatures are checked against (default time.Now).
	Now func() time.Time
	// Push, when set, receives every new filter configuration (a whole s3cors JSON
	// document, and the configuration it parses to) with its version, in version order: the
	// current one from New, then one per acknowledged change. It is called with the control
	// plane's lock held and must not call back into it, nor modify cfg.
	Push func(doc []byte, cfg *evaluator.Config, version uint64)
	// Metrics, when set, is where the control plane counts (default: its own).
	Metrics *Metrics
	// Logger receives one record per change and per refused request (default: discard).
	// Secrets are never logged.
	Logger *slog.Logger
}

// ControlPlane holds the bucket CORS rules: the seed merged with the API's changes.
type ControlPlane struct {
	verifier   Verifier
	addressing evaluator.Addressing
	store      Store
	push       func([]byte, *evaluator.Config, uint64)
	log        *slog.Logger
	metrics    *Metrics

	// seedTop holds the seed's members other than "buckets", seedBuckets its buckets as
	// written and seedCORS as parsed; seedDigests the digest of each bucket's entry.
	seedTop     map[string]json.RawMessage
	seedBuckets map[string]json.RawMessage
	seedCORS    map[string]*evaluator.BucketCORS
	seedDigests map[string]string
	// seedConfig is the seed parsed; parsed holds the API's rules parsed, by their XML.
	seedConfig *evaluator.Config
	parsed     map[string]*evaluator.BucketCORS

	mu    sync.Mutex // serialises changes: one Put wins whole
	state *State
	doc   []byte
}

// New loads the seed and the stored state, drops stored records the seed has since
// overridden (see the package documentation), and pushes the merged configuration.
func New(o Options) (*ControlPlane, error) {
	if o.Store == nil {
		return nil, errors.New("controlplane: no store")
	}
	cfg, err := evaluator.ParseConfig(o.Seed)
	if err != nil {
		return nil, fmt.Errorf("controlplane: seed configuration: %w", err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(o.Seed, &top); err != nil {
		return nil, fmt.Errorf("controlplane: seed configuration: %w", err)
	}
	var buckets map[string]json.RawMessage
	if raw, ok := top["buckets"]; ok {
		if err := json.Unmarshal(raw, &buckets); err != nil {
			return nil, fmt.Errorf("controlplane: seed configuration: buckets: %w", err)
		}
	}
	delete(top, "buckets")
	// Compacted once here, so each change only concatenates.
	for _, m := range []map[string]json.RawMessage{top, buckets} {
		for k, v := range m {
			var c bytes.Buffer
			if err := json.Compact(&c, v); err != nil {
				return nil, fmt.Errorf("controlplane: seed configuration: %q: %w", k, err)
			}
			m[k] = c.Bytes()
		}
	}
	cp := &ControlPlane{
		verifier:    Verifier{Keys: o.Keys, Region: o.Region, Now: o.Now},
		addressing:  cfg.Addressing,
		store:       o.Store,
		push:        o.Push,
		log:         o.Logger,
		metrics:     o.Metrics,
		seedTop:     top,
		seedBuckets: buckets,
		seedCORS:    cfg.Buckets,
		seedDigests: make(map[string]string, len(cfg.Buckets)),
		seedConfig:  cfg,
		parsed:      map[string]*evaluator.BucketCORS{},
	}
	if cp.log == nil {
		cp.log = slog.New(slog.DiscardHandler)
	}
	if cp.metrics == nil {
		cp.metrics = NewMetrics()
	}
	for name, b := range cfg.Buckets {
		cp.seedDigests[name] = seedDigest(b)
	}
	st, err := o.Store.Load()
	if err != nil {
		return nil, err
	}
	dropped := false
	for name, rec := range st.Buckets {
		if d, known := cp.seedDigests[name]; !known || d != rec.Seed {
			cp.log.Info("the seed overrides an earlier API change", "bucket", name, "seed_changed", known)
			delete(st.Buckets, name)
			dropped = true
		}
	}
	if dropped {
		st.Version++
		if err := o.Store.Save(st); err != nil {
			return nil, err
		}
	}
	cp.state = st
	if err := cp.rebuild(); err != nil {
		return nil, err
	}
	return cp, nil
}

// seedDigest identifies a seed entry by its rules, not its formatting.
func seedDigest(b *evaluator.BucketCORS) string {
	doc := []byte("null")
	if b != nil && b.Form != evaluator.FormNone {
		doc = b.XML()
	}
	sum := sha256.Sum256(doc)
	return hex.EncodeToString(sum[:])
}

// Metrics returns the control plane's counters.
func (cp *ControlPlane) Metrics() *Metrics { return cp.metrics }

// Document returns the current filter configuration and its version.
func (cp *ControlPlane) Document() ([]byte, uint64) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.doc, cp.state.Version
}

// Known reports whether the control plane knows bucket (the seed lists it).
func (cp *ControlPlane) Known(bucket string) bool {
	_, ok := cp.seedDigests[bucket]
	return ok
}

// Get returns the bucket's rules, or nil when it has none.
func (cp *ControlPlane) Get(bucket string) *evaluator.BucketCORS {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if rec, ok := cp.state.Buckets[bucket]; ok {
		if rec.CORS == "" {
			return nil
		}
		b, err := evaluator.ParseBucketCORS([]byte(rec.CORS))
		if err != nil {
			return nil // stored only after validation; cannot happen
		}
		return b
	}
	if b := cp.seedCORS[bucket]; b != nil && b.Form != evaluator.FormNone {
		return b
	}
	return nil
}

// Put replaces the bucket's rules (nil: remove them) once the change is stored; on a store
// failure nothing changes and the error is returned.
func (cp *ControlPlane) Put(bucket string, b *evaluator.BucketCORS) error {
	rec := &Record{Seed: cp.seedDigests[bucket]}
	if b != nil {
		rec.CORS = string(b.XML())
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	var next *State
	for attempt := 0; ; attempt++ {
		next = &State{Version: cp.state.Version + 1, Buckets: maps.Clone(cp.state.Buckets)}
		next.Buckets[bucket] = rec
		err := cp.store.Save(next)
		if err == nil {
			break
		}
		if errors.Is(err, ErrConflict) && attempt < maxConflicts {
			// Another replica wrote first: take its state, then apply this change to it.
			if err = cp.refresh(); err == nil {
				continue
			}
		}
		cp.metrics.storeFailures.Inc()
		return err
	}
	prev := cp.state
	cp.state = next
	if err := cp.rebuild(); err != nil {
		// The evaluator accepted the rules alone; a merged document it refuses would be a
		// bug here, and the filter must never get it.
		cp.state = prev
		_ = cp.store.Save(prev)
		return err
	}
	return nil
}

// maxConflicts is how many times a change is re-applied to a state another replica wrote
// before it is refused.
const maxConflicts = 8

// Refresh adopts the stored state when another replica has changed it, and pushes the result.
// A control plane on a shared store (ObjectStore) calls it periodically (RunOptions.Poll).
func (cp *ControlPlane) Refresh() error {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.refresh()
}

func (cp *ControlPlane) refresh() error {
	st, err := cp.store.Load()
	if err != nil {
		return err
	}
	if st.Version == cp.state.Version {
		return nil
	}
	prev := cp.state
	cp.state = st
	if err := cp.rebuild(); err != nil {
		cp.state = prev
		return err
	}
	cp.log.Info("adopted another replica's changes", "version", st.Version)
	return nil
}

// rebuild renders the merged document for the current state and pushes it. Called with mu
// held (or before cp is shared).
func (cp *ControlPlane) rebuild() error {
	buckets := maps.Clone(cp.seedBuckets)
	if buckets == nil {
		buckets = map[string]json.RawMessage{}
	}
	for name, rec := range cp.state.Buckets {
		if rec.CORS == "" {
			buckets[name] = json.RawMessage("null")
			continue
		}
		s, err := json.Marshal(rec.CORS)
		if err != nil {
			return fmt.Errorf("controlplane: bucket %q: %w", name, err)
		}
		buckets[name] = s
	}
	var out bytes.Buffer
	out.Grow(len(cp.doc) + 1024)
	out.WriteString("{\n  \"buckets\": {")
	for i, name := range slices.Sorted(maps.Keys(buckets)) {
		if i > 0 {
			out.WriteByte(',')
		}
		k, _ := json.Marshal(name)
		out.WriteString("\n    ")
		out.Write(k)
		out.WriteString(": ")
		out.Write(buckets[name])
	}
	out.WriteString("\n  }")
	for _, key := range slices.Sorted(maps.Keys(cp.seedTop)) {
		k, _ := json.Marshal(key)
		out.WriteString(",\n  ")
		out.Write(k)
		out.WriteString(": ")
		out.Write(cp.seedTop[key])
	}
	out.WriteString("\n}\n")
	cfg, err := cp.merged(out.Len())
	if err != nil {
		return err
	}
	if cfg == nil {
		pol, err := evaluator.Load(out.Bytes())
		if err != nil {
			return fmt.Errorf("controlplane: merged configuration: %w", err)
		}
		cfg = pol.Config()
	}
	cp.doc = out.Bytes()
	cp.metrics.version.Set(float64(cp.state.Version))
	if cp.push != nil {
		cp.push(cp.doc, cfg, cp.state.Version)
	}
	return nil
}

// merged returns, for a document of size bytes over ImageThreshold, the configuration it
// parses to, built from the parsed seed and the API's rules (each parsed once) rather than
// by parsing the document again: at 10,000 buckets that parse was over half of a change's
// CPU. It returns nil for a smaller document, which is parsed as Envoy will get it.
func (cp *ControlPlane) merged(size int) (*evaluator.Config, error) {
	if size <= ImageThreshold {
		return nil, nil
	}
	cfg := *cp.seedConfig
	cfg.Buckets = maps.Clone(cfg.Buckets)
	parsed := make(map[string]*evaluator.BucketCORS, len(cp.state.Buckets))
	for name, rec := range cp.state.Buckets {
		if rec.CORS == "" {
			cfg.Buckets[name] = &evaluator.BucketCORS{Form: evaluator.FormNone}
			continue
		}
		b, ok := cp.parsed[rec.CORS]
		if !ok {
			var err error
			if b, err = evaluator.ParseBucketCORS([]byte(rec.CORS)); err != nil {
				return nil, fmt.Errorf("controlplane: bucket %q: %w", name, err)
			}
		}
		parsed[rec.CORS] = b
		cfg.Buckets[name] = b
	}
	cp.parsed = parsed
	// The document lists the buckets sorted.
	cfg.BucketOrder = slices.Sorted(maps.Keys(cfg.Buckets))
	return &cfg, nil
}
