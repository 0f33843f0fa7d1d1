package chart

import (
	"slices"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	appsv1 "k8s.io/api/apps/v1"
)

// The manager, the gateway and the sidecar run the flint image tagged with
// the chart's appVersion unless image.tag says otherwise, which is how a
// user points the chart at an image hack/images.sh built and loaded or
// pushed (docs/install.md).
func TestImageTagFollowsAppVersion(t *testing.T) {
	ch, err := loader.Load(chartDir(t))
	if err != nil {
		t.Fatal(err)
	}
	appVersion := ch.Metadata.AppVersion
	for _, c := range []struct {
		values map[string]any
		want   string
	}{
		{nil, "ghcr.io/flint-dev/flint:" + appVersion},
		{map[string]any{"image": map[string]any{"repository": "registry.example.com/flint/flint", "tag": "v0.0.0-55-gd39b3aa"}},
			"registry.example.com/flint/flint:v0.0.0-55-gd39b3aa"},
	} {
		objs := render(t, c.values)
		for _, name := range []string{"rel-flint-manager", "rel-flint-gateway"} {
			d := convert[appsv1.Deployment](t, one(t, objs, "Deployment", name))
			if img := d.Spec.Template.Spec.Containers[0].Image; img != c.want {
				t.Errorf("values %v: %s runs %s, want %s", c.values, name, img, c.want)
			}
		}
		mgr := convert[appsv1.Deployment](t, one(t, objs, "Deployment", "rel-flint-manager"))
		if args := mgr.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--sidecar-image="+c.want) {
			t.Errorf("values %v: manager args %q lack --sidecar-image=%s", c.values, args, c.want)
		}
	}
}
