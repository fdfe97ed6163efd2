package manifest_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	httpwasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	"sigs.k8s.io/yaml"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/manifest"
	"github.com/s3cors/s3cors/internal/testing/testenv"
)

// TestPolicyImage: the wasm targets carry a policy image when asked ("on"), or under "auto"
// when the JSON is over the threshold; what the module then receives (a BytesValue from Envoy,
// Istio's pluginConfig as JSON) loads and decides as the JSON configuration does.
func TestPolicyImage(t *testing.T) {
	small := testenv.StressConfig(3)
	large := testenv.StressConfig(2000)
	if len(small) > manifest.PolicyImageThreshold || len(large) <= manifest.PolicyImageThreshold {
		t.Fatalf("test configurations of %d and %d bytes do not straddle the threshold %d", len(small), len(large), manifest.PolicyImageThreshold)
	}
	for _, tc := range []struct {
		name, mode string
		cfg        []byte
		image      bool
	}{
		{"auto/small", "", small, false},
		{"auto/large", "auto", large, true},
		{"on/small", "on", small, true},
		{"off/large", "off", large, false},
	} {
		for _, target := range []manifest.Target{manifest.EnvoyWasm, manifest.IstioWasmPlugin} {
			t.Run(tc.name+"/"+string(target), func(t *testing.T) {
				opts := manifest.Options{PolicyImage: tc.mode}
				if target == manifest.EnvoyWasm {
					opts.Hosts = []string{"s3.example.com"}
				}
				out, err := manifest.Generate(target, tc.cfg, opts)
				if err != nil {
					t.Fatal(err)
				}
				got, image := modulePluginConfig(t, target, out)
				if image != tc.image {
					t.Fatalf("carries an image: %v, want %v", image, tc.image)
				}
				if image && len(out) >= len(tc.cfg) && len(tc.cfg) > manifest.PolicyImageThreshold {
					t.Errorf("the file with the image (%d bytes) is no smaller than the JSON (%d)", len(out), len(tc.cfg))
				}
				pol, err := evaluator.LoadAny(got)
				if err != nil {
					t.Fatalf("what the module receives does not load: %v", err)
				}
				want, err := evaluator.Load(tc.cfg)
				if err != nil {
					t.Fatal(err)
				}
				sameDecisions(t, pol, want)
			})
		}
	}
}

// modulePluginConfig returns the plugin configuration the module receives from a generated
// wasm manifest, and whether it is a policy image.
func modulePluginConfig(t *testing.T, target manifest.Target, out []byte) ([]byte, bool) {
	t.Helper()
	if target == manifest.EnvoyWasm {
		b := checkBootstrap(t, string(target), out)
		var w httpwasmv3.Wasm
		if err := firstHTTPFilter(t, s3Listener(t, b)).UnmarshalTo(&w); err != nil {
			t.Fatal(err)
		}
		c := w.GetConfig().GetConfiguration()
		var bv wrapperspb.BytesValue
		if c.MessageIs(&bv) {
			if err := c.UnmarshalTo(&bv); err != nil {
				t.Fatal(err)
			}
			return bv.GetValue(), true
		}
		var sv wrapperspb.StringValue
		if err := c.UnmarshalTo(&sv); err != nil {
			t.Fatalf("plugin configuration is neither a BytesValue nor a StringValue: %v", err)
		}
		return []byte(sv.GetValue()), false
	}
	var doc struct {
		Spec struct {
			PluginConfig map[string]any `json:"pluginConfig"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(doc.Spec.PluginConfig) // Istio hands pluginConfig over as JSON
	if err != nil {
		t.Fatal(err)
	}
	_, image := doc.Spec.PluginConfig["s3corsImage"]
	return js, image
}

// sameDecisions evaluates preflights and actual requests for the first buckets, allowed and
// denied, under both policies and compares what each decides.
func sameDecisions(t *testing.T, got, want *evaluator.Policy) {
	t.Helper()
	for i := range 3 {
		for _, r := range []evaluator.Request{
			{Method: "OPTIONS", Authority: "s3.example.com", Path: fmt.Sprintf("/b%d/k", i), Origin: fmt.Sprintf("https://a%d.example", i), HasOrigin: true, RequestMethod: "PUT", HasRequestMethod: true},
			{Method: "OPTIONS", Authority: "s3.example.com", Path: fmt.Sprintf("/b%d/k", i), Origin: "https://other.example", HasOrigin: true, RequestMethod: "PUT", HasRequestMethod: true},
			{Method: "GET", Authority: "s3.example.com", Path: fmt.Sprintf("/b%d/k", i), Origin: fmt.Sprintf("https://a%d.example", i), HasOrigin: true},
		} {
			var g, w evaluator.Decision
			got.Evaluate(&r, &g)
			want.Evaluate(&r, &w)
			if g.Outcome != w.Outcome || g.Reason != w.Reason || g.Status != w.Status || g.Rule != w.Rule || g.Bucket != w.Bucket {
				t.Errorf("%s %s from %s: image policy %v %v %d, JSON policy %v %v %d", r.Method, r.Path, r.Origin, g.Outcome, g.Reason, g.Status, w.Outcome, w.Reason, w.Status)
			}
			if w.Outcome == evaluator.Decorate && fmt.Sprint(g.Headers) != fmt.Sprint(w.Headers) {
				t.Errorf("%s %s: headers %v, want %v", r.Method, r.Path, g.Headers, w.Headers)
			}
		}
	}
}

// TestPolicyImageOptions: the option is refused where no module reads an image, and with a
// value it does not know.
func TestPolicyImageOptions(t *testing.T) {
	for _, tc := range []struct {
		target manifest.Target
		mode   string
		want   string
	}{
		{manifest.EnvoyExtProc, "on", `--policy-image "on": only the envoy-wasm and istio-wasmplugin targets carry a policy image`},
		{manifest.IstioExtProc, "auto", `--policy-image "auto": only the envoy-wasm and istio-wasmplugin targets carry a policy image`},
		{manifest.EnvoyWasm, "maybe", `--policy-image "maybe": want auto, on or off`},
	} {
		_, err := manifest.Generate(tc.target, testenv.StressConfig(1), manifest.Options{PolicyImage: tc.mode, Hosts: []string{"s3.example.com"}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s --policy-image %s: %v, want an error containing %q", tc.target, tc.mode, err, tc.want)
		}
	}
}
