package configfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// maxYAMLNodes bounds the nodes a YAML document may expand to through aliases, so that a
// "billion laughs" file is refused instead of exhausting memory. A configuration of 100
// buckets of 100 rules of 10 members each stays far below it.
const maxYAMLNodes = 1 << 20

// yamlToJSON converts one YAML document into the JSON document that says the same, for
// evaluator.Load. It reads YAML 1.2 (go.yaml.in/yaml/v3, the parser sigs.k8s.io/yaml wraps)
// and walks the node tree itself instead of decoding into Go maps, so that:
//
//   - mapping keys are taken as written: a bucket named yes, on, 0123 or 1e3 keeps its name
//     (sigs.k8s.io/yaml's YAML 1.1 reading would rename them true, true, 83 and 1000);
//   - keys keep their order, which the configuration's bucket order follows;
//   - a key given twice in one mapping is an error, as in JSON's strict reading;
//   - anchors, aliases and merge keys ("<<") work, within maxYAMLNodes.
//
// Scalars become JSON by their resolved YAML type: strings (and timestamps, kept as written)
// are JSON strings, integers and floats JSON numbers, true/false booleans, null null. An
// empty file is null. More than one document is an error.
func yamlToJSON(data []byte) ([]byte, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return []byte("null"), nil
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("line %d: a second YAML document; the configuration is one document", extra.Line)
	}
	w := yamlWriter{}
	if err := w.node(&doc, 0); err != nil {
		return nil, err
	}
	return w.buf.Bytes(), nil
}

type yamlWriter struct {
	buf   bytes.Buffer
	nodes int
}

func (w *yamlWriter) node(n *yaml.Node, depth int) error {
	w.nodes++
	if w.nodes > maxYAMLNodes || depth > 1000 {
		return fmt.Errorf("line %d: the document expands to more than %d nodes (aliases?)", n.Line, maxYAMLNodes)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			w.buf.WriteString("null")
			return nil
		}
		return w.node(n.Content[0], depth+1)
	case yaml.AliasNode:
		return w.node(n.Alias, depth+1)
	case yaml.SequenceNode:
		w.buf.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				w.buf.WriteByte(',')
			}
			if err := w.node(c, depth+1); err != nil {
				return err
			}
		}
		w.buf.WriteByte(']')
		return nil
	case yaml.MappingNode:
		return w.mapping(n, depth)
	case yaml.ScalarNode:
		return w.scalar(n)
	}
	return fmt.Errorf("line %d: unsupported YAML node", n.Line)
}

type yamlPair struct {
	key   string
	value *yaml.Node
}

// mapping writes a mapping in key order, explicit keys first among equals: a key merged in by
// "<<" yields to one written in the mapping itself, as YAML's merge key specifies.
func (w *yamlWriter) mapping(n *yaml.Node, depth int) error {
	var pairs []yamlPair
	seen := map[string]bool{}
	var merged []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, v)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			return fmt.Errorf("line %d: a mapping key must be a plain value", k.Line)
		}
		if seen[k.Value] {
			return fmt.Errorf("line %d: key %q given twice", k.Line, k.Value)
		}
		seen[k.Value] = true
		pairs = append(pairs, yamlPair{k.Value, v})
	}
	for _, m := range merged {
		sources := []*yaml.Node{m}
		if resolved := derefAlias(m); resolved.Kind == yaml.SequenceNode {
			sources = resolved.Content
		}
		for _, src := range sources {
			src = derefAlias(src)
			if src.Kind != yaml.MappingNode {
				return fmt.Errorf("line %d: a merge key (<<) takes a mapping or a list of mappings", src.Line)
			}
			for i := 0; i+1 < len(src.Content); i += 2 {
				k := derefAlias(src.Content[i])
				if k.Kind != yaml.ScalarNode || seen[k.Value] {
					continue
				}
				seen[k.Value] = true
				pairs = append(pairs, yamlPair{k.Value, src.Content[i+1]})
			}
		}
	}
	w.buf.WriteByte('{')
	for i, p := range pairs {
		if i > 0 {
			w.buf.WriteByte(',')
		}
		w.string(p.key)
		w.buf.WriteByte(':')
		if err := w.node(p.value, depth+1); err != nil {
			return err
		}
	}
	w.buf.WriteByte('}')
	return nil
}

func derefAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func (w *yamlWriter) scalar(n *yaml.Node) error {
	switch n.ShortTag() {
	case "!!null":
		w.buf.WriteString("null")
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return err
		}
		w.buf.WriteString(strconv.FormatBool(b))
	case "!!int":
		var i int64
		if err := n.Decode(&i); err == nil {
			w.buf.WriteString(strconv.FormatInt(i, 10))
			return nil
		}
		var u uint64
		if err := n.Decode(&u); err != nil {
			return fmt.Errorf("line %d: integer %q out of range", n.Line, n.Value)
		}
		w.buf.WriteString(strconv.FormatUint(u, 10))
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return err
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return fmt.Errorf("line %d: %q has no JSON equivalent", n.Line, n.Value)
		}
		w.buf.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
	case "!!str", "!!timestamp":
		w.string(n.Value)
	default:
		return fmt.Errorf("line %d: unsupported YAML tag %q", n.Line, n.Tag)
	}
	return nil
}

func (w *yamlWriter) string(s string) {
	b, _ := json.Marshal(s) // a string always marshals
	w.buf.Write(b)
}
