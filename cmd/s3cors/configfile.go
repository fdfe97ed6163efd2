package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/extproc"
)

// docKind is what a file passed to validate or convert holds.
type docKind string

const (
	kindConfig      docKind = "config"      // a whole s3cors configuration
	kindBucketCORS  docKind = "bucket-cors" // a bare bucket CORS document
	kindUnsupported docKind = ""
)

// detectKind tells an s3cors configuration from a bare bucket CORS document: S3 XML and the
// console's JSON array are bucket documents, a JSON object is a bucket document when it has a
// top-level "CORSRules" member, and anything else (other JSON objects, YAML) is an s3cors
// configuration, as extproc reads it.
func detectKind(data []byte) docKind {
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	if len(trimmed) == 0 {
		return kindConfig
	}
	switch trimmed[0] {
	case '<', '[':
		return kindBucketCORS
	case '{':
		var top map[string]json.RawMessage
		if err := json.Unmarshal(trimmed, &top); err == nil {
			if _, ok := top["CORSRules"]; ok {
				return kindBucketCORS
			}
		}
	}
	return kindConfig
}

// configJSON returns an s3cors configuration file's content as JSON. YAML is converted the
// way the extproc server converts it, so that every command accepts exactly what the server
// accepts.
func configJSON(path string, data []byte) ([]byte, error) {
	doc, err := extproc.ConfigJSON(path, data)
	if err != nil {
		if cause := errors.Unwrap(err); cause != nil {
			return nil, fmt.Errorf("invalid YAML: %w", cause)
		}
		return nil, err
	}
	return doc, nil
}

// loadPolicy reads, validates and compiles an s3cors configuration file.
func loadPolicy(path string) (*evaluator.Policy, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading configuration: %w", err)
	}
	doc, err := configJSON(path, data)
	if err != nil {
		return nil, nil, err
	}
	pol, err := evaluator.Load(doc)
	if err != nil {
		return nil, nil, fmt.Errorf("configuration %q: %w", path, err)
	}
	return pol, doc, nil
}
