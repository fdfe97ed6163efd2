package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/s3cors/s3cors/internal/configfile"
)

// This file turns JSON into block-style YAML that keeps the document's key order (bucket
// names and rule members read as the user wrote them), which sigs.k8s.io/yaml cannot do: it
// goes through Go maps and sorts keys. Whatever it writes is checked by converting it back
// (sameJSON), so a quoting mistake can never reach a manifest.

// node is a parsed JSON value with its object keys in document order.
type node struct {
	kind   byte // '{', '[', 's' string, 'n' number, 'l' literal (true, false, null)
	keys   []string
	vals   []*node
	scalar string // the string's value, or the number/literal's JSON text
}

func parseJSON(data []byte) (*node, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	n, err := parseValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the JSON document")
	}
	return n, nil
}

func parseValue(dec *json.Decoder) (*node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			n := &node{kind: '{'}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("object key %v is not a string", kt)
				}
				val, err := parseValue(dec)
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, k)
				n.vals = append(n.vals, val)
			}
			_, err := dec.Token() // '}'
			return n, err
		case '[':
			n := &node{kind: '['}
			for dec.More() {
				val, err := parseValue(dec)
				if err != nil {
					return nil, err
				}
				n.vals = append(n.vals, val)
			}
			_, err := dec.Token() // ']'
			return n, err
		}
		return nil, fmt.Errorf("unexpected %v", v)
	case string:
		return &node{kind: 's', scalar: v}, nil
	case json.Number:
		return &node{kind: 'n', scalar: v.String()}, nil
	case bool:
		return &node{kind: 'l', scalar: fmt.Sprint(v)}, nil
	case nil:
		return &node{kind: 'l', scalar: "null"}, nil
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}

// toYAML renders a JSON document as block YAML, every line prefixed by indent spaces. The
// result ends with a newline. A scalar or empty document renders on one line.
func toYAML(data []byte, indent int) (string, error) {
	n, err := parseJSON(data)
	if err != nil {
		return "", fmt.Errorf("manifest: %w", err)
	}
	out := indentLines(render(n), strings.Repeat(" ", indent))
	if err := sameJSON(data, []byte(out)); err != nil {
		return "", fmt.Errorf("manifest: YAML rendering does not read back as the configuration: %w", err)
	}
	return out, nil
}

// render returns n as YAML lines at indentation 0, each ending in "\n".
func render(n *node) string {
	switch n.kind {
	case '{':
		if len(n.keys) == 0 {
			return "{}\n"
		}
		var b strings.Builder
		for i, k := range n.keys {
			b.WriteString(scalarString(k) + ":")
			writeChild(&b, n.vals[i])
		}
		return b.String()
	case '[':
		if len(n.vals) == 0 {
			return "[]\n"
		}
		var b strings.Builder
		for _, v := range n.vals {
			b.WriteString("-")
			if isBlock(v) {
				// The item's first line goes after "- ", its other lines two columns in.
				first, rest, _ := strings.Cut(render(v), "\n")
				b.WriteString(" " + first + "\n" + indentLines(rest, "  "))
				continue
			}
			writeChild(&b, v)
		}
		return b.String()
	}
	return scalar(n) + "\n"
}

// writeChild writes a value after "key:" or "-": inline for scalars and empty collections,
// on the following lines and two columns in for collections and multi-line strings.
func writeChild(b *strings.Builder, v *node) {
	if v.kind == 's' {
		if header, body, ok := literalBlock(v.scalar); ok {
			b.WriteString(" " + header + "\n")
			b.WriteString(indentLines(strings.Join(body, "\n")+"\n", "  "))
			return
		}
	}
	if !isBlock(v) {
		b.WriteString(" " + scalar(v) + "\n")
		return
	}
	b.WriteString("\n" + indentLines(render(v), "  "))
}

// indentLines prefixes every non-empty line of s with pad; empty lines stay empty, so no line
// ends in spaces.
func indentLines(s, pad string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if l != "" && l != "\n" {
			b.WriteString(pad)
		}
		b.WriteString(l)
	}
	return b.String()
}

// literalBlock splits a multi-line string (an S3 XML document, say) into the lines of a YAML
// literal block, with "|" (one final newline) or "|-" (none) as its header. It declines
// strings a literal block cannot hold exactly; those are quoted instead.
func literalBlock(s string) (header string, lines []string, ok bool) {
	if !strings.Contains(s, "\n") || strings.HasPrefix(s, " ") || strings.HasPrefix(s, "\n") {
		return "", nil, false
	}
	for _, r := range s {
		if r != '\n' && !printable(r) || r == '\t' || r == '\r' || r == 0x85 || r == 0x2028 || r == 0x2029 || r == 0xFEFF {
			return "", nil, false
		}
	}
	header = "|-"
	if strings.HasSuffix(s, "\n") {
		if strings.HasSuffix(s, "\n\n") {
			return "", nil, false
		}
		header = "|"
		s = strings.TrimSuffix(s, "\n")
	}
	lines = strings.Split(s, "\n")
	for _, l := range lines {
		if strings.TrimRight(l, " ") != l {
			return "", nil, false // trailing spaces would be invisible and easy to lose
		}
	}
	return header, lines, true
}

func isBlock(v *node) bool {
	return (v.kind == '{' && len(v.keys) > 0) || (v.kind == '[' && len(v.vals) > 0)
}

func scalar(n *node) string {
	switch n.kind {
	case '{':
		return "{}"
	case '[':
		return "[]"
	case 's':
		return scalarString(n.scalar)
	}
	return n.scalar
}

var (
	// plainRe: strings YAML 1.1 and 1.2 both read back as the same string when written
	// unquoted. It admits URLs, origins with a wildcard, header names and paths, and refuses
	// anything starting with an indicator or a digit (numbers, times, octals).
	plainRe = regexp.MustCompile(`^[A-Za-z_/][A-Za-z0-9_./*+-]*(:[A-Za-z0-9_./*+-]+)*$`)
	// yaml11Words are the plain scalars YAML 1.1 (sigs.k8s.io/yaml's parser) reads as
	// booleans or null, compared case-insensitively.
	yaml11Words = map[string]bool{"y": true, "yes": true, "n": true, "no": true, "true": true, "false": true,
		"on": true, "off": true, "null": true, "nan": true, "inf": true}
)

// scalarString writes s plainly when that is unambiguous, else double-quoted, escaping every
// character YAML would not take literally (controls, line separators, byte-order marks).
func scalarString(s string) string {
	if plainRe.MatchString(s) && !yaml11Words[strings.ToLower(s)] {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case !printable(r) || r == 0x85 || r == 0x2028 || r == 0x2029 || r == 0xFEFF:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// printable reports whether YAML allows r unescaped (YAML 1.1 and 1.2 c-printable, minus tab,
// CR and LF, which the callers treat themselves).
func printable(r rune) bool {
	switch {
	case r >= 0x20 && r <= 0x7E:
		return true
	case r == 0x85:
		return true
	case r >= 0xA0 && r <= 0xD7FF:
		return true
	case r >= 0xE000 && r <= 0xFFFD:
		return true
	case r >= 0x10000 && r <= 0x10FFFF:
		return true
	}
	return false
}

// yamlReaders are the two ways our YAML is read: Kubernetes tooling reads manifests with
// sigs.k8s.io/yaml (YAML 1.1 rules), s3cors reads its configuration file as YAML 1.2
// (configfile.JSON). What we write must mean the same to both.
var yamlReaders = []struct {
	name string
	read func([]byte) ([]byte, error)
}{
	{"YAML 1.1 (sigs.k8s.io/yaml)", func(y []byte) ([]byte, error) { return yaml.YAMLToJSON(y) }},
	{"YAML 1.2 (s3cors)", func(y []byte) ([]byte, error) { return configfile.JSON("config.yaml", y) }},
}

// sameJSON reports whether the YAML document y reads back, under both readers, as the same
// value as the JSON document j. Numbers compare by value.
func sameJSON(j, y []byte) error {
	var want any
	if err := json.Unmarshal(j, &want); err != nil {
		return err
	}
	for _, r := range yamlReaders {
		back, err := r.read(y)
		if err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
		var got any
		if err := json.Unmarshal(back, &got); err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
		if !reflect.DeepEqual(want, got) {
			return fmt.Errorf("%s reads it as %s", r.name, back)
		}
	}
	return nil
}
