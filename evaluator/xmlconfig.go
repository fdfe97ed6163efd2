package evaluator

import (
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"strings"
)

// xmlElements maps the element names of a CORSRule to the JSON member names used in paths,
// so that a problem in an XML-form bucket names the element the same way as in JSON.
var xmlElements = map[string]string{
	"ID":            "ID",
	"AllowedOrigin": "AllowedOrigins",
	"AllowedMethod": "AllowedMethods",
	"AllowedHeader": "AllowedHeaders",
	"ExposeHeader":  "ExposeHeaders",
	"MaxAgeSeconds": "MaxAgeSeconds",
}

var xmlRuleElements = []string{"ID", "AllowedOrigin", "AllowedMethod", "AllowedHeader", "ExposeHeader", "MaxAgeSeconds"}

// errXMLStop ends an XML walk after a structural problem has been recorded.
var errXMLStop = errors.New("stop")

type xmlParser struct {
	ps    *problems
	dec   *xml.Decoder
	path  string // the bucket's path
	space string // the root's namespace, which every element must share
}

// parseXMLBucket reads a <CORSConfiguration> document, with or without S3's namespace.
// Problems carry JSON-style member paths (CORSRules[1].AllowedMethods[0]) so that one path
// syntax serves every form.
func parseXMLBucket(ps *problems, path, doc string) *BucketCORS {
	if len(doc) > maxDocBytes {
		ps.add(path, CodeMaxMessageLengthExceeded, msgTooBig, "the bucket's CORS document is "+strconv.Itoa(len(doc))+" bytes; PutBucketCors accepts at most 65536")
	}
	p := &xmlParser{ps: ps, path: path, dec: xml.NewDecoder(strings.NewReader(doc))}
	p.dec.Strict = true
	// Only the predefined entities exist; the decoder rejects any other (no DTDs here).
	rules, err := p.document()
	if err != nil && !errors.Is(err, errXMLStop) {
		ps.malformed(path, p.describe(err))
		return nil
	}
	if err != nil {
		return nil
	}
	return &BucketCORS{Form: FormXML, Rules: rules}
}

func (p *xmlParser) describe(err error) string {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return "XML syntax error on line " + strconv.Itoa(se.Line) + ": " + se.Msg
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "the XML document ends early"
	}
	return "XML error: " + err.Error()
}

// next returns the next token that matters: comments and processing instructions (the
// <?xml?> declaration) are skipped, character data is returned.
func (p *xmlParser) next() (xml.Token, error) {
	for {
		tok, err := p.dec.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.Comment, xml.ProcInst:
			continue
		case xml.Directive:
			p.ps.malformed(p.path, "XML directives such as <!DOCTYPE> are not accepted")
			return nil, errXMLStop
		default:
			return t, nil
		}
	}
}

func (p *xmlParser) document() ([]Rule, error) {
	var rules []Rule
	root := false
	for {
		tok, err := p.next()
		if errors.Is(err, io.EOF) {
			if !root {
				p.ps.malformed(p.path, "no <CORSConfiguration> element")
				return nil, errXMLStop
			}
			return rules, nil
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.CharData:
			if !isXMLSpace(t) {
				p.ps.malformed(p.path, "text outside the <CORSConfiguration> element")
				return nil, errXMLStop
			}
		case xml.StartElement:
			if root {
				p.ps.malformed(p.path, "content after the </CORSConfiguration> element")
				return nil, errXMLStop
			}
			root = true
			if t.Name.Local != "CORSConfiguration" {
				p.ps.malformed(p.path, "the root element is <"+t.Name.Local+">, not <CORSConfiguration>")
				return nil, errXMLStop
			}
			if t.Name.Space != "" && t.Name.Space != s3Namespace {
				p.ps.malformed(p.path, "namespace "+strconv.Quote(t.Name.Space)+" is not S3's "+strconv.Quote(s3Namespace))
				return nil, errXMLStop
			}
			p.space = t.Name.Space
			p.attrs(p.path, t)
			rules, err = p.configuration()
			if err != nil {
				return nil, err
			}
		case xml.EndElement:
			return nil, errors.New("unexpected end element")
		}
	}
}

// attrs reports attributes other than namespace declarations: S3's schema has none.
func (p *xmlParser) attrs(path string, t xml.StartElement) {
	for _, a := range t.Attr {
		if a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns" {
			continue
		}
		p.ps.malformed(path, "unexpected attribute "+strconv.Quote(a.Name.Local)+" on <"+t.Name.Local+">")
	}
}

func (p *xmlParser) configuration() ([]Rule, error) {
	rulesPath := member(p.path, "CORSRules")
	var rules []Rule
	n := 0
	for {
		tok, err := p.next()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.CharData:
			if !isXMLSpace(t) {
				p.ps.malformed(p.path, "text directly inside <CORSConfiguration>")
				return nil, errXMLStop
			}
		case xml.StartElement:
			if t.Name.Local != "CORSRule" || t.Name.Space != p.space {
				p.ps.malformed(p.path, "unexpected element <"+t.Name.Local+"> in <CORSConfiguration>"+xmlHint(t.Name.Local, []string{"CORSRule"}))
				if err := p.dec.Skip(); err != nil {
					return nil, err
				}
				continue
			}
			rp := index(rulesPath, n)
			if n == maxRules {
				p.ps.malformed(rp, "S3 allows at most 100 CORS rules")
			}
			p.attrs(rp, t)
			r, err := p.rule(rp)
			if err != nil {
				return nil, err
			}
			rules = append(rules, r)
			n++
		case xml.EndElement:
			if n == 0 {
				p.ps.malformed(rulesPath, detailNoRules)
			}
			return rules, nil
		}
	}
}

func (p *xmlParser) rule(path string) (Rule, error) {
	var r Rule
	counts := map[string]int{}
	var reported memberSet // JSON member names already reported as misspelt
	for {
		tok, err := p.next()
		if err != nil {
			return r, err
		}
		switch t := tok.(type) {
		case xml.CharData:
			if !isXMLSpace(t) {
				p.ps.malformed(path, "text directly inside <CORSRule>")
				return r, errXMLStop
			}
		case xml.StartElement:
			name := t.Name.Local
			jsonName, known := xmlElements[name]
			if !known || t.Name.Space != p.space {
				p.ps.malformed(path, "unexpected element <"+name+"> in <CORSRule>"+xmlHint(name, xmlRuleElements))
				if k := xmlTarget(name); k != "" {
					reported.add(xmlElements[k])
				}
				if err := p.dec.Skip(); err != nil {
					return r, err
				}
				continue
			}
			i := counts[name]
			counts[name]++
			ep := index(member(path, jsonName), i)
			if name == "ID" || name == "MaxAgeSeconds" {
				ep = member(path, jsonName)
			}
			p.attrs(ep, t)
			text, err := p.text(ep, name)
			if err != nil {
				return r, err
			}
			switch name {
			case "ID":
				if i > 0 {
					p.ps.malformed(ep, "a rule has at most one <ID>")
					continue
				}
				r.ID = &text
				checkValue(p.ps, ep, text, idFault)
			case "AllowedOrigin":
				r.AllowedOrigins = append(r.AllowedOrigins, text)
				checkValue(p.ps, ep, text, originFault)
			case "AllowedMethod":
				r.AllowedMethods = append(r.AllowedMethods, text)
				checkValue(p.ps, ep, text, methodFault)
			case "AllowedHeader":
				r.AllowedHeaders = append(r.AllowedHeaders, text)
				checkValue(p.ps, ep, text, allowedHeaderFault)
			case "ExposeHeader":
				r.ExposeHeaders = append(r.ExposeHeaders, text)
				checkValue(p.ps, ep, text, exposeHeaderFault)
			case "MaxAgeSeconds":
				if i > 0 {
					p.ps.malformed(ep, "a rule has at most one <MaxAgeSeconds>")
					continue
				}
				// xsd:int collapses surrounding whitespace.
				v := strings.Trim(text, " \t\r\n")
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					p.ps.malformed(ep, "MaxAgeSeconds must be an integer from 0 to 2147483647, not "+strconv.Quote(text))
					continue
				}
				r.MaxAgeSeconds = &n
				if f, bad := maxAgeFault(n); bad {
					p.ps.fault(ep, f)
				}
			}
		case xml.EndElement:
			checkRequired(p.ps, path, &r, reported)
			return r, nil
		}
	}
}

// text reads the character content of a leaf element up to its end tag.
func (p *xmlParser) text(path, name string) (string, error) {
	var sb strings.Builder
	for {
		tok, err := p.next()
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.CharData:
			sb.Write(t)
		case xml.StartElement:
			p.ps.malformed(path, "unexpected element <"+t.Name.Local+"> inside <"+name+">")
			if err := p.dec.Skip(); err != nil {
				return "", err
			}
		case xml.EndElement:
			return sb.String(), nil
		}
	}
}

func isXMLSpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// xmlTarget returns the rule element a misspelt element name most likely means, or "".
func xmlTarget(name string) string {
	for _, k := range xmlRuleElements {
		if name == k+"s" {
			return k
		}
	}
	if k := suggestTarget(name, xmlRuleElements); k != "" {
		return k
	}
	if k, ok := cfnSpellings[name]; ok {
		// CloudFormation names map to JSON members; name the XML element instead.
		for el, member := range xmlElements {
			if member == k {
				return el
			}
		}
	}
	return ""
}

// xmlHint suggests an element name for a misspelt one; JSON member names (plural) are a
// common slip when converting by hand.
func xmlHint(name string, known []string) string {
	for _, k := range known {
		if name == k+"s" {
			return "; did you mean <" + k + ">? XML elements are singular, JSON members plural"
		}
	}
	k := suggestTarget(name, known)
	if k == "" && len(known) > 1 {
		k = xmlTarget(name)
	}
	if k != "" {
		return "; did you mean <" + k + ">?"
	}
	return ""
}
