package evaluator

import "testing"

// TestXMLSize pins xmlSize (the 64 KB check's arithmetic) to the renderer it predicts.
func TestXMLSize(t *testing.T) {
	id, age := "a&b<c>\r", int64(3000)
	for _, rules := range [][]Rule{
		{{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"GET"}}},
		{{ID: &id, AllowedOrigins: []string{"http://x/?a=1&b=<2>", ""}, AllowedMethods: []string{"PUT", "GET"},
			AllowedHeaders: []string{"x-amz-*"}, ExposeHeaders: []string{"ETag", "\r\n"}, MaxAgeSeconds: &age},
			{AllowedOrigins: []string{"é"}, AllowedMethods: []string{"HEAD"}}},
	} {
		if got, want := xmlSize(rules), len(renderXML(rules)); got != want {
			t.Errorf("xmlSize = %d, rendered %d bytes", got, want)
		}
	}
}
