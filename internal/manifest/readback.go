package manifest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/configfile"
)

// This file checks that what a generated file carries is what its consumer will read.

// yamlSafeJSON escapes, inside JSON strings, the characters a YAML literal block would not
// carry as they are (line separators, byte-order marks, other non-printables). Outside strings
// JSON has only ASCII, so every such character is inside one, where \uXXXX means the same.
func yamlSafeJSON(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == '\n' || (printable(r) && r != 0x85 && r != 0x2028 && r != 0x2029 && r != 0xFEFF) {
			b.WriteRune(r)
			continue
		}
		fmt.Fprintf(&b, `\u%04X`, r)
	}
	return b.String()
}

// embeddedConfigReadsBack checks that the configuration inside a generated file, read as its
// consumer reads the file, is the configuration it was generated from: the envoy-wasm plugin
// configuration (JSON text), the WasmPlugin's pluginConfig (a YAML mapping) and the ext_proc
// ConfigMap's config.yaml (YAML text, read as the server reads it); or, when img is not nil,
// the policy image (base64 in either wasm target) is img byte for byte.
func embeddedConfigReadsBack(target Target, out, js, img []byte) error {
	docs := splitDocs(out)
	if img != nil {
		var doc any
		if err := yaml.Unmarshal(docs[0], &doc); err != nil {
			return fmt.Errorf("manifest: generated %s: %w", target, err)
		}
		v := dig(doc, "spec", "pluginConfig", "s3corsImage")
		if target == EnvoyWasm {
			v = dig(doc, "static_resources", "listeners", 0, "filter_chains", 0, "filters", 0, "typed_config",
				"http_filters", 0, "typed_config", "config", "configuration", "value")
		}
		s, _ := v.(string)
		if got, err := base64.StdEncoding.DecodeString(s); err != nil || !bytes.Equal(got, img) {
			return fmt.Errorf("manifest: the policy image embedded in %s does not read back (a bug)", target)
		}
		return nil
	}
	if target == EnvoyControlPlane || target == IstioControlPlane {
		if err := defaultConfigReadsBack(target, docs, js); err != nil {
			return err
		}
	}
	var doc any
	var got []byte
	switch target {
	case EnvoyWasm:
		if err := yaml.Unmarshal(docs[0], &doc); err != nil {
			return fmt.Errorf("manifest: generated %s: %w", target, err)
		}
		v, _ := dig(doc, "static_resources", "listeners", 0, "filter_chains", 0, "filters", 0, "typed_config",
			"http_filters", 0, "typed_config", "config", "configuration", "value").(string)
		got = []byte(v)
	case IstioWasmPlugin:
		if err := yaml.Unmarshal(docs[0], &doc); err != nil {
			return fmt.Errorf("manifest: generated %s: %w", target, err)
		}
		v := dig(doc, "spec", "pluginConfig")
		var err error
		if got, err = json.Marshal(v); err != nil || v == nil {
			return fmt.Errorf("manifest: generated %s has no pluginConfig (a bug)", target)
		}
	case IstioExtProc, IstioControlPlane:
		v, _ := dig(docOfKind(docs, "ConfigMap"), "data", "config.yaml").(string)
		var err error
		if got, err = configfile.JSON("config.yaml", []byte(v)); err != nil {
			return fmt.Errorf("manifest: generated %s: the ConfigMap's config.yaml: %w", target, err)
		}
	default:
		return nil // envoy-extproc carries no configuration; envoy-controlplane, its default
	}
	return readsBackAs(target, "the configuration", got, js)
}

// defaultConfigReadsBack checks that the default configuration of the ECDS filter in a
// *-controlplane file (docs) is denyAll(js).
func defaultConfigReadsBack(target Target, docs [][]byte, js []byte) error {
	want, err := denyAll(js)
	if err != nil {
		return err
	}
	var filter any
	if target == EnvoyControlPlane {
		var doc any
		if err := yaml.Unmarshal(docs[0], &doc); err != nil {
			return fmt.Errorf("manifest: generated %s: %w", target, err)
		}
		filter = dig(doc, "static_resources", "listeners", 0, "filter_chains", 0, "filters", 0, "typed_config", "http_filters", 0)
	} else {
		filter = dig(docOfKind(docs, "EnvoyFilter"), "spec", "configPatches", 0, "patch", "value")
	}
	got, _ := dig(filter, "config_discovery", "default_config", "config", "configuration", "value").(string)
	return readsBackAs(target, "the default configuration", []byte(got), want)
}

// readsBackAs checks that the JSON document got, what the file embeds, is want.
func readsBackAs(target Target, what string, got, want []byte) error {
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		return fmt.Errorf("manifest: %s embedded in %s is not readable (a bug): %w", what, target, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if !reflect.DeepEqual(g, w) {
		return fmt.Errorf("manifest: %s embedded in %s does not read back as the configuration (a bug)", what, target)
	}
	return nil
}

// docOfKind is the last document of docs whose kind is kind, decoded; nil if none.
func docOfKind(docs [][]byte, kind string) any {
	var doc any
	for _, d := range docs {
		var m any
		if err := yaml.Unmarshal(d, &m); err == nil && dig(m, "kind") == kind {
			doc = m
		}
	}
	return doc
}

// splitDocs splits a multi-document YAML file at its "---" lines. Each document keeps the line
// break before the separator, which belongs to it (a final literal block keeps its newline).
func splitDocs(b []byte) [][]byte {
	docs := bytes.Split(b, []byte("\n---\n"))
	for i := range docs[:len(docs)-1] {
		docs[i] = append(docs[i], '\n')
	}
	return docs
}

// dig follows map keys and list indexes into a decoded YAML or JSON document.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

// survivesStruct checks that the configuration reaches the module unchanged through Istio,
// which holds pluginConfig as a google.protobuf.Struct (every number a float64, keys
// unordered) and hands the module its JSON rendering.
func survivesStruct(js []byte, want *evaluator.Config) error {
	var s structpb.Struct
	if err := protojson.Unmarshal(js, &s); err != nil {
		return fmt.Errorf("manifest: the configuration cannot be an Istio pluginConfig: %w", err)
	}
	back, err := protojson.Marshal(&s)
	if err != nil {
		return fmt.Errorf("manifest: the configuration cannot be an Istio pluginConfig: %w", err)
	}
	pol, err := evaluator.Load(back)
	if err != nil {
		return fmt.Errorf("manifest: the configuration does not survive Istio's pluginConfig conversion (numbers become float64): %w", err)
	}
	got := *pol.Config()
	exp := *want
	got.BucketOrder, exp.BucketOrder = nil, nil // a Struct does not keep key order
	if !reflect.DeepEqual(got, exp) {
		return errors.New("manifest: the configuration does not survive Istio's pluginConfig conversion (numbers become float64): check large numbers such as MaxAgeSeconds")
	}
	return nil
}
