package extproc

import (
	"sync"
	"time"

	"github.com/s3cors/s3cors/evaluator"
)

// countingObserver counts what a server reports, for tests.
type countingObserver struct {
	mu       sync.Mutex
	failed   map[ErrorKind]int
	decided  map[[2]int]int
	open     int
	answered [2]int
}

var _ Observer = (*countingObserver)(nil)

func (o *countingObserver) StreamStarted() { o.mu.Lock(); o.open++; o.mu.Unlock() }

func (o *countingObserver) StreamEnded(time.Duration) { o.mu.Lock(); o.open--; o.mu.Unlock() }

func (o *countingObserver) Decided(d *evaluator.Decision) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.decided == nil {
		o.decided = map[[2]int]int{}
	}
	o.decided[[2]int{int(d.Outcome), int(d.Reason)}]++
}

func (o *countingObserver) Answered(p Phase, _ time.Duration) {
	o.mu.Lock()
	o.answered[p]++
	o.mu.Unlock()
}

func (o *countingObserver) Failed(kind ErrorKind) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.failed == nil {
		o.failed = map[ErrorKind]int{}
	}
	o.failed[kind]++
}

func (o *countingObserver) failures(kind ErrorKind) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.failed[kind]
}

func (o *countingObserver) decisions(outcome evaluator.Outcome, reason evaluator.Reason) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.decided[[2]int{int(outcome), int(reason)}]
}

// observed is the countingObserver of a server testServer made.
func observed(s *Server) *countingObserver { return s.metrics.(*countingObserver) }
