package evaluator

import "strconv"

// XML renders the rules as GetBucketCors returns them: the XML declaration, a newline and a
// single-line <CORSConfiguration> in S3's namespace. Each rule lists only the members that
// were set, as ID, AllowedHeader, AllowedMethod, AllowedOrigin, ExposeHeader, MaxAgeSeconds,
// values in the order and case written. A FormNone bucket has no configuration: nil.
func (b *BucketCORS) XML() []byte {
	if b == nil || b.Form == FormNone {
		return nil
	}
	return renderXML(b.Rules)
}

// JSON renders the rules as the AWS CLI shows GetBucketCors ({"CORSRules": [...]}, indented
// by four spaces, members as in XML). A FormNone bucket renders as null.
func (b *BucketCORS) JSON() []byte {
	if b == nil || b.Form == FormNone {
		return []byte("null\n")
	}
	out := []byte("{\n    \"CORSRules\": ")
	out = appendJSONRules(out, b.Rules, "    ")
	return append(out, "\n}\n"...)
}

// ConsoleJSON renders the rules as the S3 console's CORS editor shows them: a bare array of
// rule objects, indented by four spaces. A FormNone bucket renders as null.
func (b *BucketCORS) ConsoleJSON() []byte {
	if b == nil || b.Form == FormNone {
		return []byte("null\n")
	}
	out := appendJSONRules(nil, b.Rules, "")
	return append(out, '\n')
}

func renderXML(rules []Rule) []byte {
	out := make([]byte, 0, 128+len(rules)*160)
	out = append(out, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<CORSConfiguration xmlns="`+s3Namespace+`">`...)
	for i := range rules {
		r := &rules[i]
		out = append(out, "<CORSRule>"...)
		if r.ID != nil {
			out = appendXMLElement(out, "ID", *r.ID)
		}
		for _, v := range r.AllowedHeaders {
			out = appendXMLElement(out, "AllowedHeader", v)
		}
		for _, v := range r.AllowedMethods {
			out = appendXMLElement(out, "AllowedMethod", v)
		}
		for _, v := range r.AllowedOrigins {
			out = appendXMLElement(out, "AllowedOrigin", v)
		}
		for _, v := range r.ExposeHeaders {
			out = appendXMLElement(out, "ExposeHeader", v)
		}
		if r.MaxAgeSeconds != nil {
			out = appendXMLElement(out, "MaxAgeSeconds", strconv.FormatInt(*r.MaxAgeSeconds, 10))
		}
		out = append(out, "</CORSRule>"...)
	}
	return append(out, "</CORSConfiguration>"...)
}

// xmlSize is len(renderXML(rules)), computed without rendering: the 64 KB check runs on
// every bucket at load.
func xmlSize(rules []Rule) int {
	n := len(`<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<CORSConfiguration xmlns="`+s3Namespace+`">`) + len("</CORSConfiguration>")
	elem := func(name, text string) int { return 2*len(name) + 5 + xmlTextSize(text) }
	for i := range rules {
		r := &rules[i]
		n += len("<CORSRule></CORSRule>")
		if r.ID != nil {
			n += elem("ID", *r.ID)
		}
		for _, v := range r.AllowedHeaders {
			n += elem("AllowedHeader", v)
		}
		for _, v := range r.AllowedMethods {
			n += elem("AllowedMethod", v)
		}
		for _, v := range r.AllowedOrigins {
			n += elem("AllowedOrigin", v)
		}
		for _, v := range r.ExposeHeaders {
			n += elem("ExposeHeader", v)
		}
		if r.MaxAgeSeconds != nil {
			n += elem("MaxAgeSeconds", strconv.FormatInt(*r.MaxAgeSeconds, 10))
		}
	}
	return n
}

func xmlTextSize(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '&':
			n += len("&amp;") - 1
		case '<', '>':
			n += len("&lt;") - 1
		case '\r':
			n += len("&#13;") - 1
		}
	}
	return n
}

func appendXMLElement(out []byte, name, text string) []byte {
	out = append(out, '<')
	out = append(out, name...)
	out = append(out, '>')
	out = appendXMLText(out, text)
	out = append(out, "</"...)
	out = append(out, name...)
	return append(out, '>')
}

// appendXMLText escapes text for element content. '\r' is written as a character reference
// because a parser would otherwise normalise it away, and the round trip must be exact.
func appendXMLText(out []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '&':
			out = append(out, "&amp;"...)
		case '<':
			out = append(out, "&lt;"...)
		case '>':
			out = append(out, "&gt;"...)
		case '\r':
			out = append(out, "&#13;"...)
		default:
			out = append(out, c)
		}
	}
	return out
}

func appendJSONRules(out []byte, rules []Rule, indent string) []byte {
	out = append(out, "[\n"...)
	in1 := indent + "    "
	in2 := in1 + "    "
	for i := range rules {
		r := &rules[i]
		out = append(out, in1...)
		out = append(out, "{\n"...)
		first := true
		sep := func() {
			if !first {
				out = append(out, ",\n"...)
			}
			first = false
			out = append(out, in2...)
		}
		if r.ID != nil {
			sep()
			out = append(out, `"ID": `...)
			out = appendJSONString(out, *r.ID)
		}
		for _, m := range [...]struct {
			name string
			vs   []string
		}{
			{"AllowedHeaders", r.AllowedHeaders},
			{"AllowedMethods", r.AllowedMethods},
			{"AllowedOrigins", r.AllowedOrigins},
			{"ExposeHeaders", r.ExposeHeaders},
		} {
			if len(m.vs) == 0 {
				continue
			}
			sep()
			out = appendJSONString(out, m.name)
			out = append(out, ": [\n"...)
			for j, v := range m.vs {
				out = append(out, in2...)
				out = append(out, "    "...)
				out = appendJSONString(out, v)
				if j < len(m.vs)-1 {
					out = append(out, ',')
				}
				out = append(out, '\n')
			}
			out = append(out, in2...)
			out = append(out, ']')
		}
		if r.MaxAgeSeconds != nil {
			sep()
			out = append(out, `"MaxAgeSeconds": `...)
			out = strconv.AppendInt(out, *r.MaxAgeSeconds, 10)
		}
		out = append(out, '\n')
		out = append(out, in1...)
		out = append(out, '}')
		if i < len(rules)-1 {
			out = append(out, ',')
		}
		out = append(out, '\n')
	}
	out = append(out, indent...)
	return append(out, ']')
}

// appendJSONString quotes s as JSON, escaping only what JSON requires (so "<" and non-ASCII
// stay readable, as the AWS CLI prints them).
func appendJSONString(out []byte, s string) []byte {
	const hex = "0123456789abcdef"
	out = append(out, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			out = append(out, '\\', c)
		case c == '\n':
			out = append(out, '\\', 'n')
		case c == '\r':
			out = append(out, '\\', 'r')
		case c == '\t':
			out = append(out, '\\', 't')
		case c < 0x20:
			out = append(out, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			out = append(out, c)
		}
	}
	return append(out, '"')
}
