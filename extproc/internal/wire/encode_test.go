package wire

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// sameAsTyped checks that w, sent through Codec and through gRPC's own proto codec, is the
// deterministic proto.Marshal encoding of want. The server's tests (extproc/wire_test.go) hold
// every case-table answer to the same standard.
func sameAsTyped(w *Response, want *extprocv3.ProcessingResponse) error {
	wantBytes, err := proto.MarshalOptions{Deterministic: true}.Marshal(want)
	if err != nil {
		return err
	}
	for name, c := range map[string]encoding.CodecV2{"wire codec": testCodec, "proto codec": encoding.GetCodecV2(grpcproto.Name)} {
		data, err := c.Marshal(w)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if got := data.Materialize(); !bytes.Equal(got, wantBytes) {
			return fmt.Errorf("%s sends\n%x\nproto.Marshal gives\n%x", name, got, wantBytes)
		}
		data.Free()
	}
	return nil
}

func TestWireConstantAnswers(t *testing.T) {
	for _, c := range []struct {
		name string
		a    *Constant
		want *extprocv3.ProcessingResponse
	}{
		{"continue", Continue, &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{
			RequestHeaders: &extprocv3.HeadersResponse{},
		}}},
		{"continue-skip", ContinueSkip, &extprocv3.ProcessingResponse{
			Response:     &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}},
			ModeOverride: &filterv3.ProcessingMode{ResponseHeaderMode: filterv3.ProcessingMode_SKIP},
		}},
	} {
		var w Response
		w.SetStatic(c.a)
		if err := sameAsTyped(&w, c.want); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// TestWireTagsFitOneByte: tag() writes one-byte tags, which holds for field numbers 1 to 15.
func TestWireTagsFitOneByte(t *testing.T) {
	for _, num := range []protowire.Number{
		numResponseRequestHeaders, numResponseResponseHeaders, numResponseImmediateResponse, numResponseModeOverride,
		numHeadersResponseResponse, numCommonHeaderMutation,
		numImmediateStatus, numImmediateHeaders, numImmediateBody, numImmediateDetails,
		numMutationSetHeaders, numMutationRemoveHeaders, numHTTPStatusCode,
		numOptionHeader, numOptionAppendAction, numHeaderKey, numHeaderRawValue, numModeResponseHeaderMode,
	} {
		if num < 1 || num > 15 {
			t.Errorf("field number %d needs a multi-byte tag", num)
		}
		for _, typ := range []protowire.Type{protowire.VarintType, protowire.BytesType} {
			if got, want := []byte{tag(num, typ)}, protowire.AppendTag(nil, num, typ); !bytes.Equal(got, want) {
				t.Errorf("tag(%d, %d) = %x, protowire writes %x", num, typ, got, want)
			}
		}
	}
}

// TestWireResponseReleasesAnswer: under a codec other than Codec, the answer's bytes become
// the message's unknown fields; once the Response is set to something else (a pooled stream
// dropping an oversized buffer sets it to nil), they must not stay alive through them.
func TestWireResponseReleasesAnswer(t *testing.T) {
	set := []SetHeader{{Key: "access-control-allow-headers", Value: strings.Repeat("h", 32<<10)}}
	var w Response
	raw := AppendImmediateResponse(nil, 200, set, nil, "s3cors_preflight_allowed")
	w.Set(raw)
	data, err := encoding.GetCodecV2(grpcproto.Name).Marshal(&w)
	if err != nil {
		t.Fatal(err)
	}
	if got := data.Materialize(); !bytes.Equal(got, raw) {
		t.Fatalf("the proto codec sent %d bytes, want the %d of the answer", len(got), len(raw))
	}
	data.Free()
	w.Set(nil)
	if n := len(w.msg.ProtoReflect().GetUnknown()); n > 0 {
		t.Errorf("the response keeps a %d-byte answer alive in its message's unknown fields", n)
	}
}
