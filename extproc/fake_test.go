package extproc

import (
	"context"
	"io"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// fakeStream is an ext_proc stream over channels, no network: the server side is what
// Process gets, the client side (fakeClient) is what the test, playing Envoy, drives.
type fakeStream struct {
	grpc.ServerStream // unused methods; Process needs only Context, RecvMsg and SendMsg
	ctx               context.Context
	in                chan *extprocv3.ProcessingRequest  // Envoy to server; closed on CloseSend
	out               chan *extprocv3.ProcessingResponse // server to Envoy
}

var _ extprocv3.ExternalProcessor_ProcessServer = (*fakeStream)(nil)

func (f *fakeStream) Context() context.Context { return f.ctx }

// RecvMsg puts the next message into m as gRPC would with ServerCodecOption's codec: from its
// wire bytes.
func (f *fakeStream) RecvMsg(m any) error {
	msg, err := f.Recv()
	if err != nil {
		return err
	}
	return feedRequest(msg, m)
}

func (f *fakeStream) Recv() (*extprocv3.ProcessingRequest, error) {
	select {
	case m, ok := <-f.in:
		if !ok {
			return nil, io.EOF
		}
		return m, nil
	case <-f.ctx.Done():
		return nil, status.FromContextError(f.ctx.Err()).Err()
	}
}

// SendMsg delivers what a gRPC client would receive for m: the bytes ServerCodecOption's codec
// makes of it, unmarshalled.
func (f *fakeStream) SendMsg(m any) error {
	resp, err := decodeSent(m)
	if err != nil {
		return err
	}
	return f.Send(resp)
}

func (f *fakeStream) Send(m *extprocv3.ProcessingResponse) error {
	select {
	case f.out <- m:
		return nil
	case <-f.ctx.Done():
		return status.FromContextError(f.ctx.Err()).Err()
	}
}

// fakeClient is Envoy's end of a fakeStream, with the server's Process running behind it.
type fakeClient struct {
	fs     *fakeStream
	cancel context.CancelFunc
	done   chan struct{}
	err    error // what Process returned, valid once done is closed
	closed bool
}

// startFake runs srv.Process on a new fake stream and returns its client end. The stream is
// cancelled, and Process awaited, when the test ends.
func startFake(t testing.TB, srv extprocv3.ExternalProcessorServer) *fakeClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	fc := &fakeClient{
		fs: &fakeStream{
			ctx: ctx,
			in:  make(chan *extprocv3.ProcessingRequest),
			out: make(chan *extprocv3.ProcessingResponse),
		},
		cancel: cancel,
		done:   make(chan struct{}),
	}
	go func() {
		fc.err = srv.Process(fc.fs)
		close(fc.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-fc.done
	})
	return fc
}

// Send delivers m, or returns io.EOF once the server has ended the stream, as a gRPC client
// stream does.
func (c *fakeClient) Send(m *extprocv3.ProcessingRequest) error {
	select {
	case c.fs.in <- m:
		return nil
	case <-c.done:
		return io.EOF
	}
}

// Recv returns the server's next message, io.EOF when Process returned nil, or its error.
func (c *fakeClient) Recv() (*extprocv3.ProcessingResponse, error) {
	select {
	case m := <-c.fs.out:
		return m, nil
	case <-c.done:
		if c.err != nil {
			return nil, c.err
		}
		return nil, io.EOF
	}
}

func (c *fakeClient) CloseSend() error {
	if !c.closed {
		c.closed = true
		close(c.fs.in)
	}
	return nil
}

// wait returns what Process returned.
func (c *fakeClient) wait() error {
	<-c.done
	return c.err
}

// wantCode fails t unless err is a gRPC status with code.
func wantCode(t *testing.T, err error, code codes.Code) {
	t.Helper()
	if got := status.Code(err); got != code {
		t.Fatalf("Process returned %v (%s), want %s", err, got, code)
	}
}
