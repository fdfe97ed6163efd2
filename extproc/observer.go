package extproc

import (
	"time"

	"github.com/s3cors/s3cors/evaluator"
)

// Observer is told what a [Server] does, for metrics: every decision, every protocol or
// transport error, every stream's life and the server time of every answer. Its methods are
// called on the request path, from many streams at once: they must be safe for concurrent
// use, cheap and non-blocking. The library itself counts nothing; `s3cors extproc` passes an
// Observer that feeds Prometheus (internal/extprocd), so that a program embedding the server
// pulls in no metrics library it did not choose.
type Observer interface {
	// StreamStarted and StreamEnded bracket one stream (one HTTP request); d is its lifetime,
	// which for a decorated request spans the upstream's response time.
	StreamStarted()
	StreamEnded(d time.Duration)
	// Decided is told every decision, once per stream that reached one.
	Decided(d *evaluator.Decision)
	// Answered is told the server time of an answer to request or response headers, from
	// receiving the message to sending the answer.
	Answered(phase Phase, d time.Duration)
	// Failed is told every protocol or transport error, by kind.
	Failed(kind ErrorKind)
}

// Phase is the message an answer was for.
type Phase uint8

const (
	PhaseRequestHeaders Phase = iota
	PhaseResponseHeaders
)

func (p Phase) String() string {
	if p == PhaseResponseHeaders {
		return "response_headers"
	}
	return "request_headers"
}

// ErrorKind is what went wrong with a stream, as an [Observer] is told it.
type ErrorKind string

const (
	ErrorOutOfOrder      ErrorKind = "out_of_order"       // a message the protocol does not allow now
	ErrorMissingHeader   ErrorKind = "missing_header"     // request headers without :method, :authority or :path
	ErrorUnknownMessage  ErrorKind = "unknown_message"    // a message with no (or an unknown) request type
	ErrorNoPolicy        ErrorKind = "no_policy"          // a stream arrived before any configuration
	ErrorUnexpectedPhase ErrorKind = "unexpected_phase"   // a body or trailers message (Envoy misconfigured)
	ErrorRecv            ErrorKind = "recv"               // the stream broke while reading
	ErrorSend            ErrorKind = "send"               // the stream broke while writing
	ErrorObservability   ErrorKind = "observability_mode" // Envoy ignores our answers (observability_mode)
)

// ErrorKinds are every [ErrorKind] the server reports, for an Observer that exports each
// from the start.
var ErrorKinds = []ErrorKind{ErrorOutOfOrder, ErrorMissingHeader, ErrorUnknownMessage, ErrorNoPolicy, ErrorUnexpectedPhase, ErrorRecv, ErrorSend, ErrorObservability}

// OutcomeName is an outcome as the server logs and labels it: pass_through, reply, decorate
// or forward ("unknown" for a value the evaluator does not define).
func OutcomeName(o evaluator.Outcome) string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown"
}

var outcomeNames = [...]string{
	evaluator.PassThrough: "pass_through",
	evaluator.Reply:       "reply",
	evaluator.Decorate:    "decorate",
	evaluator.Forward:     "forward",
}

// nopObserver is the Observer of a server given none.
type nopObserver struct{}

func (nopObserver) StreamStarted()                {}
func (nopObserver) StreamEnded(time.Duration)     {}
func (nopObserver) Decided(*evaluator.Decision)   {}
func (nopObserver) Answered(Phase, time.Duration) {}
func (nopObserver) Failed(ErrorKind)              {}
