package evaluator

// RequestField is one request header the evaluator reads: a field of Request. Adapters that
// read headers by name (proxy-wasm asks the host one at a time; ext_proc scans Envoy's list)
// read these, and Set says what each value means.
type RequestField uint8

const (
	FieldMethod         RequestField = iota // ":method"
	FieldAuthority                          // ":authority"
	FieldPath                               // ":path"
	FieldOrigin                             // "origin"
	FieldRequestMethod                      // "access-control-request-method"
	FieldRequestHeaders                     // "access-control-request-headers"
	FieldHost                               // "host", a Host header beside :authority (HTTP/2)
	FieldForwardedHost                      // "x-forwarded-host"
	FieldForwarded                          // "forwarded" (RFC 7239)
	RequestFields                           // the number of fields
)

var requestFieldNames = [RequestFields]string{
	FieldMethod:         ":method",
	FieldAuthority:      ":authority",
	FieldPath:           ":path",
	FieldOrigin:         "origin",
	FieldRequestMethod:  "access-control-request-method",
	FieldRequestHeaders: "access-control-request-headers",
	FieldHost:           "host",
	FieldForwardedHost:  "x-forwarded-host",
	FieldForwarded:      "forwarded",
}

// Name is the field's header name as HTTP/2 and Envoy spell it, lower case: ":method",
// "origin", "x-forwarded-host".
func (f RequestField) Name() string {
	if f < RequestFields {
		return requestFieldNames[f]
	}
	return ""
}

// Set records that the request carries header f with value v: the field and, for the
// optional ones, its Has flag. Method, Authority and Path have no flag (an adapter that
// lacks one says so itself).
func (r *Request) Set(f RequestField, v string) {
	switch f {
	case FieldMethod:
		r.Method = v
	case FieldAuthority:
		r.Authority = v
	case FieldPath:
		r.Path = v
	case FieldOrigin:
		r.Origin, r.HasOrigin = v, true
	case FieldRequestMethod:
		r.RequestMethod, r.HasRequestMethod = v, true
	case FieldRequestHeaders:
		r.RequestHeaders, r.HasRequestHeaders = v, true
	case FieldHost:
		r.Host, r.HasHost = v, true
	case FieldForwardedHost:
		r.ForwardedHost, r.HasForwardedHost = v, true
	case FieldForwarded:
		r.Forwarded, r.HasForwarded = v, true
	}
}
