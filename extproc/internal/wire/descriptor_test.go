package wire

import (
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// wireField is one field the hand-written wire code reads or writes, as encode.go and
// decode.go number it, and what the generated descriptors must say of it.
type wireField struct {
	msg   proto.Message         // the message the field belongs to
	name  protoreflect.Name     // the field's name in the .proto
	num   protowire.Number      // the constant the wire code uses
	kind  protoreflect.Kind     // the field's type, which fixes its wire type
	list  bool                  // repeated
	oneof protoreflect.Name     // the oneof it belongs to, "" for none
	of    protoreflect.FullName // a message or enum field's type, "" for a scalar
	typ   protowire.Type        // the wire type the code writes or reads
	utf8  bool                  // a string proto.Unmarshal validates (proto3), as the parser does
}

// wireFields is every field number the wire code uses.
var wireFields = []wireField{
	// encode.go: the answers.
	{msg: &extprocv3.ProcessingResponse{}, name: "request_headers", num: numResponseRequestHeaders, kind: protoreflect.MessageKind, oneof: "response", of: "envoy.service.ext_proc.v3.HeadersResponse", typ: protowire.BytesType},
	{msg: &extprocv3.ProcessingResponse{}, name: "response_headers", num: numResponseResponseHeaders, kind: protoreflect.MessageKind, oneof: "response", of: "envoy.service.ext_proc.v3.HeadersResponse", typ: protowire.BytesType},
	{msg: &extprocv3.ProcessingResponse{}, name: "immediate_response", num: numResponseImmediateResponse, kind: protoreflect.MessageKind, oneof: "response", of: "envoy.service.ext_proc.v3.ImmediateResponse", typ: protowire.BytesType},
	{msg: &extprocv3.ProcessingResponse{}, name: "mode_override", num: numResponseModeOverride, kind: protoreflect.MessageKind, of: "envoy.extensions.filters.http.ext_proc.v3.ProcessingMode", typ: protowire.BytesType},
	{msg: &extprocv3.HeadersResponse{}, name: "response", num: numHeadersResponseResponse, kind: protoreflect.MessageKind, of: "envoy.service.ext_proc.v3.CommonResponse", typ: protowire.BytesType},
	{msg: &extprocv3.CommonResponse{}, name: "header_mutation", num: numCommonHeaderMutation, kind: protoreflect.MessageKind, of: "envoy.service.ext_proc.v3.HeaderMutation", typ: protowire.BytesType},
	{msg: &extprocv3.ImmediateResponse{}, name: "status", num: numImmediateStatus, kind: protoreflect.MessageKind, of: "envoy.type.v3.HttpStatus", typ: protowire.BytesType},
	{msg: &extprocv3.ImmediateResponse{}, name: "headers", num: numImmediateHeaders, kind: protoreflect.MessageKind, of: "envoy.service.ext_proc.v3.HeaderMutation", typ: protowire.BytesType},
	{msg: &extprocv3.ImmediateResponse{}, name: "body", num: numImmediateBody, kind: protoreflect.BytesKind, typ: protowire.BytesType},
	{msg: &extprocv3.ImmediateResponse{}, name: "details", num: numImmediateDetails, kind: protoreflect.StringKind, typ: protowire.BytesType, utf8: true},
	{msg: &extprocv3.HeaderMutation{}, name: "set_headers", num: numMutationSetHeaders, kind: protoreflect.MessageKind, list: true, of: "envoy.config.core.v3.HeaderValueOption", typ: protowire.BytesType},
	{msg: &extprocv3.HeaderMutation{}, name: "remove_headers", num: numMutationRemoveHeaders, kind: protoreflect.StringKind, list: true, typ: protowire.BytesType, utf8: true},
	{msg: &typev3.HttpStatus{}, name: "code", num: numHTTPStatusCode, kind: protoreflect.EnumKind, of: "envoy.type.v3.StatusCode", typ: protowire.VarintType},
	{msg: &corev3.HeaderValueOption{}, name: "header", num: numOptionHeader, kind: protoreflect.MessageKind, of: "envoy.config.core.v3.HeaderValue", typ: protowire.BytesType},
	{msg: &corev3.HeaderValueOption{}, name: "append_action", num: numOptionAppendAction, kind: protoreflect.EnumKind, of: "envoy.config.core.v3.HeaderValueOption.HeaderAppendAction", typ: protowire.VarintType},
	{msg: &corev3.HeaderValue{}, name: "key", num: numHeaderKey, kind: protoreflect.StringKind, typ: protowire.BytesType, utf8: true},
	{msg: &corev3.HeaderValue{}, name: "raw_value", num: numHeaderRawValue, kind: protoreflect.BytesKind, typ: protowire.BytesType},
	{msg: &filterv3.ProcessingMode{}, name: "response_header_mode", num: numModeResponseHeaderMode, kind: protoreflect.EnumKind, of: "envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.HeaderSendMode", typ: protowire.VarintType},

	// decode.go: the requests.
	{msg: &extprocv3.ProcessingRequest{}, name: "request_headers", num: numRequestRequestHeaders, kind: protoreflect.MessageKind, oneof: "request", of: "envoy.service.ext_proc.v3.HttpHeaders", typ: protowire.BytesType},
	{msg: &extprocv3.ProcessingRequest{}, name: "response_trailers", num: numRequestResponseTrailers, kind: protoreflect.MessageKind, oneof: "request", of: "envoy.service.ext_proc.v3.HttpTrailers", typ: protowire.BytesType},
	{msg: &extprocv3.ProcessingRequest{}, name: "observability_mode", num: numRequestObservabilityMode, kind: protoreflect.BoolKind, typ: protowire.VarintType},
	{msg: &extprocv3.HttpHeaders{}, name: "headers", num: numHTTPHeadersHeaders, kind: protoreflect.MessageKind, of: "envoy.config.core.v3.HeaderMap", typ: protowire.BytesType},
	{msg: &corev3.HeaderMap{}, name: "headers", num: numHeaderMapHeaders, kind: protoreflect.MessageKind, list: true, of: "envoy.config.core.v3.HeaderValue", typ: protowire.BytesType},
	{msg: &corev3.HeaderValue{}, name: "value", num: numHeaderValue, kind: protoreflect.StringKind, typ: protowire.BytesType, utf8: true},
}

// wireTypeOf is the wire type protobuf uses for a non-packed field of kind k.
func wireTypeOf(k protoreflect.Kind) protowire.Type {
	switch k {
	case protoreflect.MessageKind, protoreflect.StringKind, protoreflect.BytesKind:
		return protowire.BytesType
	case protoreflect.GroupKind:
		return protowire.StartGroupType
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
		return protowire.Fixed32Type
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
		return protowire.Fixed64Type
	}
	return protowire.VarintType
}

// TestWireFieldsMatchDescriptors derives every field number, type, cardinality and oneof the
// wire code hard-codes from the generated descriptors of go-control-plane, so that an upgrade
// that renumbers or retypes anything fails here instead of sending garbage to Envoy.
func TestWireFieldsMatchDescriptors(t *testing.T) {
	for _, w := range wireFields {
		md := w.msg.ProtoReflect().Descriptor()
		fd := md.Fields().ByName(w.name)
		if fd == nil {
			t.Errorf("%s has no field %s", md.FullName(), w.name)
			continue
		}
		where := string(fd.FullName())
		if fd.Number() != w.num {
			t.Errorf("%s is field %d, the wire code uses %d", where, fd.Number(), w.num)
		}
		if fd.Kind() != w.kind {
			t.Errorf("%s is a %s, the wire code treats it as a %s", where, fd.Kind(), w.kind)
		}
		if got := wireTypeOf(fd.Kind()); got != w.typ || fd.IsPacked() {
			t.Errorf("%s goes on the wire as type %d (packed %v), the wire code uses %d", where, got, fd.IsPacked(), w.typ)
		}
		if fd.IsList() != w.list || fd.IsMap() {
			t.Errorf("%s: repeated %v, map %v; the wire code expects repeated %v", where, fd.IsList(), fd.IsMap(), w.list)
		}
		var oneof protoreflect.Name
		if o := fd.ContainingOneof(); o != nil && !o.IsSynthetic() {
			oneof = o.Name()
		}
		if oneof != w.oneof {
			t.Errorf("%s is in oneof %q, the wire code expects %q", where, oneof, w.oneof)
		}
		var of protoreflect.FullName
		switch {
		case fd.Message() != nil:
			of = fd.Message().FullName()
		case fd.Enum() != nil:
			of = fd.Enum().FullName()
		}
		if of != w.of {
			t.Errorf("%s is of type %q, the wire code writes a %q", where, of, w.of)
		}
		// proto3 implicit presence is what lets the encoder leave out empty scalars; a field
		// with explicit presence (proto3 optional, proto2, editions) would have to be written.
		if !fd.IsList() && fd.Message() == nil && fd.HasPresence() {
			t.Errorf("%s has explicit presence; the encoder leaves its zero value out", where)
		}
		if fd.Kind() == protoreflect.StringKind && (fd.ParentFile().Syntax() == protoreflect.Proto3) != w.utf8 {
			t.Errorf("%s: proto3 string (UTF-8 validated) %v, the wire code assumes %v", where, fd.ParentFile().Syntax() == protoreflect.Proto3, w.utf8)
		}
		if w.num < 1 || w.num > 15 {
			t.Errorf("%s: field number %d needs a multi-byte tag; tag() writes one byte", where, w.num)
		}
	}
}

// TestWireEnumsMatchDescriptors: the enum values written by hand are the generated ones.
func TestWireEnumsMatchDescriptors(t *testing.T) {
	for _, c := range []struct {
		enum protoreflect.EnumDescriptor
		name protoreflect.Name
		got  int32
	}{
		{corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD.Descriptor(), "OVERWRITE_IF_EXISTS_OR_ADD", appendOverwriteIfExistsOrAdd},
		{filterv3.ProcessingMode_SKIP.Descriptor(), "SKIP", headerSendModeSkip},
	} {
		v := c.enum.Values().ByName(c.name)
		if v == nil {
			t.Errorf("%s has no value %s", c.enum.FullName(), c.name)
			continue
		}
		if int32(v.Number()) != c.got {
			t.Errorf("%s.%s is %d, the wire code writes %d", c.enum.FullName(), c.name, v.Number(), c.got)
		}
	}
	// The status is written as the evaluator's int, which an open (proto3) enum carries as it is.
	if e := typev3.StatusCode(0).Descriptor(); e.IsClosed() {
		t.Errorf("%s is a closed enum: statuses it does not list would be dropped", e.FullName())
	}
}

// TestWireRequestKindsMatchDescriptors: kind k is field k+1 of ProcessingRequest's oneof
// request, named kindNames[k], and the oneof has no member the parser would take for an
// unknown field.
func TestWireRequestKindsMatchDescriptors(t *testing.T) {
	md := (&extprocv3.ProcessingRequest{}).ProtoReflect().Descriptor()
	oneof := md.Oneofs().ByName("request")
	if oneof == nil {
		t.Fatal("ProcessingRequest has no oneof request")
	}
	fields := oneof.Fields()
	if fields.Len() != len(kindNames)-1 {
		t.Errorf("oneof request has %d fields, the parser knows %d", fields.Len(), len(kindNames)-1)
	}
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.Number() < numRequestRequestHeaders || fd.Number() > numRequestResponseTrailers {
			t.Errorf("%s is field %d, outside the parser's %d..%d", fd.FullName(), fd.Number(), numRequestRequestHeaders, numRequestResponseTrailers)
			continue
		}
		if k := Kind(fd.Number() - 1); kindNames[k] != string(fd.Name()) {
			t.Errorf("field %d is %s, the parser reads it as %s", fd.Number(), fd.Name(), kindNames[k])
		}
		if fd.Kind() != protoreflect.MessageKind {
			t.Errorf("%s is a %s, the parser reads a message", fd.FullName(), fd.Kind())
		}
	}
	// The headers kinds carry HttpHeaders, whose headers the parser reads.
	for _, k := range []Kind{KindRequestHeaders, KindResponseHeaders} {
		fd := md.Fields().ByNumber(protowire.Number(k) + 1)
		if fd == nil || fd.Message().FullName() != "envoy.service.ext_proc.v3.HttpHeaders" {
			t.Errorf("kind %s is not an HttpHeaders field: %v", kindNames[k], fd)
		}
	}
}
