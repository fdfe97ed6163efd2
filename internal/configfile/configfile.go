package configfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/s3cors/s3cors/evaluator"
)

// JSON returns the configuration document in data as JSON, converting YAML when name or
// content says it is YAML. The format follows the name: ".json" is JSON, ".yaml" and ".yml"
// are YAML, anything else is JSON when its first non-blank byte is '{' and YAML otherwise.
// YAML is converted to the JSON document that says the same (keys as written and in order,
// a key given twice an error; see yamlToJSON), so both spell the same keys (see the shared
// configuration contract). JSON is returned unchanged but for a leading UTF-8 byte-order
// mark, which some Windows editors write and JSON does not allow.
//
// A YAML file with no document in it (nothing, blanks, comments, a bare "---") is returned as
// no bytes at all, not as the null YAML reads it as: evaluator.ParseConfig then reports it as
// an empty configuration, as it does an empty JSON file, where null would be refused as "not
// a JSON object". A document that says null ("null", "~") stays null.
//
// The only error is YAML that does not parse: "configfile: NAME: invalid YAML: CAUSE",
// wrapping the parser's error.
func JSON(name string, data []byte) ([]byte, error) {
	if !isYAML(name, data) {
		return bytes.TrimPrefix(data, []byte("\ufeff")), nil
	}
	if Blank(data) {
		return []byte{}, nil // a tab, blank as it is, is no YAML
	}
	doc, err := yamlToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("configfile: %q: invalid YAML: %w", name, err)
	}
	if string(doc) == "null" && yamlBlank(data) {
		return []byte{}, nil
	}
	return doc, nil
}

// yamlBlank reports YAML that holds no value: no document at all, or one that writes nothing
// after its "---". It is asked only of data that already converted to null, so the second
// read costs nothing worth saving.
func yamlBlank(data []byte) bool {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		return errors.Is(err, io.EOF)
	}
	if len(doc.Content) != 1 {
		return len(doc.Content) == 0
	}
	n := doc.Content[0]
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null" && n.Value == ""
}

func isYAML(name string, data []byte) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".json":
		return false
	case ".yaml", ".yml":
		return true
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	return len(trimmed) == 0 || trimmed[0] != '{'
}

// Blank reports a document with nothing but blanks (and a byte-order mark) in it.
func Blank(data []byte) bool {
	return len(bytes.TrimLeft(data, " \t\r\n\ufeff")) == 0
}

// Kind is what a file holds: a whole s3cors configuration or a bare bucket CORS document.
type Kind string

const (
	KindConfig     Kind = "config"      // a whole s3cors configuration
	KindBucketCORS Kind = "bucket-cors" // a bare bucket CORS document
)

// Detect tells an s3cors configuration from a bare bucket CORS document by what the
// evaluator calls a bare document where a configuration belongs (evaluator.BareDocument): S3
// XML, an array of rules, an object with "CORSRules" and no "buckets". An array that does not
// parse is taken for a bucket document too, for the bucket parser to report its syntax error
// in the form it has. Anything else (other JSON, YAML, a blank file) is an s3cors
// configuration, as [JSON] reads it.
func Detect(data []byte) Kind {
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	if len(trimmed) == 0 {
		return KindConfig
	}
	switch trimmed[0] {
	case '<', '{', '[':
		if _, _, ok := evaluator.BareDocument(trimmed); ok {
			return KindBucketCORS
		}
		if trimmed[0] == '[' && !json.Valid(trimmed) {
			return KindBucketCORS
		}
	}
	return KindConfig
}

// BareDocument returns the evaluator's problem for a bare bucket CORS document given where
// an s3cors configuration belongs, or "" when data is not one. data is the file as read and
// doc (may be nil) the JSON [JSON] converts it to, which tells a YAML bucket document. An XML
// file is no YAML a converter can be relied on to read, so the file as read is asked first.
func BareDocument(data, doc []byte) string {
	if _, msg, ok := evaluator.BareDocument(data); ok {
		return msg
	}
	if _, msg, ok := evaluator.BareDocument(doc); ok {
		return msg
	}
	return ""
}
