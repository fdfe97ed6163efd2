package controlplane_test

import (
	"testing"

	"github.com/s3cors/s3cors/internal/controlplane"
	"github.com/s3cors/s3cors/internal/manifest"
)

// TestImageThreshold: the control plane switches to the policy image where
// `s3cors manifest --policy-image auto` does.
func TestImageThreshold(t *testing.T) {
	if controlplane.ImageThreshold != manifest.PolicyImageThreshold {
		t.Fatalf("controlplane.ImageThreshold %d, manifest.PolicyImageThreshold %d", controlplane.ImageThreshold, manifest.PolicyImageThreshold)
	}
}
