package wasmhost

import (
	"sync"
)

// stat is one Envoy stat. Stats live in Envoy's process-wide store, so every VM (canary and
// workers) that defines the same name shares one stat, as here.
type stat struct {
	name    string // as Envoy exposes it: "wasmcustom." + the guest's name
	kind    uint32
	value   int64
	samples []uint64 // histogram records
}

// statStore is the host's stat store.
type statStore struct {
	mu     sync.Mutex
	byName map[string]*stat
}

func newStatStore() *statStore { return &statStore{byName: map[string]*stat{}} }

// define returns the stat of that type and name, creating it. Envoy prefixes custom stats
// with the "wasmcustom" namespace.
func (s *statStore) define(kind uint32, name string) *stat {
	s.mu.Lock()
	defer s.mu.Unlock()
	full := "wasmcustom." + name
	key := string(rune('0'+kind)) + full
	st := s.byName[key]
	if st == nil {
		st = &stat{name: full, kind: kind}
		s.byName[key] = st
	}
	return st
}

func (s *statStore) add(st *stat, d int64) {
	s.mu.Lock()
	st.value += d
	s.mu.Unlock()
}

func (s *statStore) set(st *stat, v int64) {
	s.mu.Lock()
	st.value = v
	s.mu.Unlock()
}

// maxSamples bounds a histogram's recorded samples; the count keeps growing.
const maxSamples = 4096

func (s *statStore) record(st *stat, v uint64) {
	s.mu.Lock()
	st.value++
	if len(st.samples) < maxSamples {
		st.samples = append(st.samples, v)
	}
	s.mu.Unlock()
}

func (s *statStore) value(st *stat) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return st.value
}

// Metrics returns every custom stat the guest defined, by the name Envoy exposes
// ("wasmcustom." + name): counters and gauges with their value, histograms with the number of
// values recorded.
func (h *Host) Metrics() map[string]int64 {
	h.stats.mu.Lock()
	defer h.stats.mu.Unlock()
	out := make(map[string]int64, len(h.stats.byName))
	for _, st := range h.stats.byName {
		out[st.name] = st.value
	}
	return out
}

// HistogramSamples returns the values recorded into a histogram (the first 4096 of them), by
// its exposed name; nil when there is no such histogram.
func (h *Host) HistogramSamples(name string) []uint64 {
	h.stats.mu.Lock()
	defer h.stats.mu.Unlock()
	st := h.stats.byName[string(rune('0'+metricHistogram))+name]
	if st == nil {
		return nil
	}
	return append([]uint64(nil), st.samples...)
}

// sharedStore is Envoy's shared data and shared queues, for the host's one vm_id.
type sharedStore struct {
	mu     sync.Mutex
	data   map[string]sharedValue
	queues map[string]uint32
	items  map[uint32][][]byte
	nextQ  uint32
}

type sharedValue struct {
	val []byte
	cas uint32
}

func newSharedStore() *sharedStore {
	return &sharedStore{data: map[string]sharedValue{}, queues: map[string]uint32{}, items: map[uint32][][]byte{}}
}

func (s *sharedStore) get(key string) ([]byte, uint32, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.data[key]
	return v.val, v.cas, ok
}

// set stores a value; a non-zero cas must match the current one (CasMismatch, 8).
func (s *sharedStore) set(key string, val []byte, cas uint32) wasmResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.data[key]
	if cas != 0 && (!ok || cur.cas != cas) {
		return 8
	}
	next := cur.cas + 1
	if next == 0 {
		next = 1
	}
	s.data[key] = sharedValue{val: append([]byte(nil), val...), cas: next}
	return resultOk
}

func (s *sharedStore) registerQueue(name string) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.queues[name]; ok {
		return t
	}
	s.nextQ++
	s.queues[name] = s.nextQ
	return s.nextQ
}

func (s *sharedStore) resolveQueue(name string) (uint32, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.queues[name]
	return t, ok
}

func (s *sharedStore) enqueue(token uint32, data []byte) wasmResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	if token == 0 || token > s.nextQ {
		return resultNotFound
	}
	s.items[token] = append(s.items[token], append([]byte(nil), data...))
	return resultOk
}

// dequeue answers Empty (7) for an empty queue.
func (s *sharedStore) dequeue(token uint32) ([]byte, wasmResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if token == 0 || token > s.nextQ {
		return nil, resultNotFound
	}
	q := s.items[token]
	if len(q) == 0 {
		return nil, 7
	}
	s.items[token] = q[1:]
	return q[0], resultOk
}
