package v1alpha1

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Bounds on the stable window, as Knative's autoscaler uses: shorter windows
// make the panic window (10%) shorter than one scrape; longer ones never react.
const (
	MinStableWindow = 6 * time.Second
	MaxStableWindow = time.Hour
)

// Validate checks an Agent the way the API server's CEL rules do, so local
// mode refuses exactly what a cluster refuses, with the same messages.
// requireCommand is set by local mode, where there is no image to fall back on.
func (a *Agent) Validate(requireCommand bool) field.ErrorList {
	var errs field.ErrorList
	meta := field.NewPath("metadata")
	if a.Name == "" {
		errs = append(errs, field.Required(meta.Child("name"), "give the agent a name"))
	} else {
		for _, msg := range validation.IsDNS1035Label(a.Name) {
			errs = append(errs, field.Invalid(meta.Child("name"), a.Name, msg))
		}
	}
	if a.Namespace != "" {
		for _, msg := range validation.IsDNS1123Label(a.Namespace) {
			errs = append(errs, field.Invalid(meta.Child("namespace"), a.Namespace, msg))
		}
	}
	return append(errs, a.Spec.validate(field.NewPath("spec"), requireCommand)...)
}

func (s *AgentSpec) validate(p *field.Path, requireCommand bool) field.ErrorList {
	var errs field.ErrorList
	switch s.Protocol {
	case "", ProtocolHTTP, ProtocolMCP, ProtocolA2A:
	default:
		errs = append(errs, field.NotSupported(p.Child("protocol"), s.Protocol,
			[]Protocol{ProtocolHTTP, ProtocolMCP, ProtocolA2A}))
	}

	c := p.Child("container")
	if s.Container.Port < 1 || s.Container.Port > 65535 {
		errs = append(errs, field.Invalid(c.Child("port"), s.Container.Port,
			"set port to the TCP port the agent listens on (1-65535)"))
	}
	if requireCommand && len(s.Container.Command) == 0 {
		errs = append(errs, field.Required(c.Child("command"),
			"local mode runs command+args directly, from the agent file's directory: set command (e.g. [\"./run.sh\"] or [\"python3\", \"agent.py\"])"))
	}
	if !requireCommand {
		errs = append(errs, s.validateKube(p)...)
	}

	if s.Concurrency < 0 {
		errs = append(errs, field.Invalid(p.Child("concurrency"), s.Concurrency,
			"concurrency must be 0 (unlimited) or a positive cap"))
	}

	sc := p.Child("scaling")
	minR, maxR := s.MinReplicas(), s.MaxReplicas()
	if minR < 0 {
		errs = append(errs, field.Invalid(sc.Child("minReplicas"), minR, "minReplicas must not be negative"))
	}
	if maxR < 1 {
		errs = append(errs, field.Invalid(sc.Child("maxReplicas"), maxR, "maxReplicas must be at least 1"))
	}
	if minR > maxR {
		errs = append(errs, field.Invalid(sc.Child("minReplicas"), minR,
			fmt.Sprintf("minReplicas (%d) must not exceed maxReplicas (%d)", minR, maxR)))
	}
	if t := s.Target(); t < 1 {
		errs = append(errs, field.Invalid(sc.Child("target"), t, "target must be at least 1"))
	} else if s.Concurrency > 0 && t > s.Concurrency {
		errs = append(errs, field.Invalid(sc.Child("target"), t,
			fmt.Sprintf("target (%d) must not exceed concurrency (%d): replicas can never hold more", t, s.Concurrency)))
	}
	if d := s.ScaleToZeroAfter(); d <= 0 {
		errs = append(errs, field.Invalid(sc.Child("scaleToZeroAfter"), d.String(), "scaleToZeroAfter must be positive"))
	}
	if d := s.StableWindow(); d < MinStableWindow || d > MaxStableWindow {
		errs = append(errs, field.Invalid(sc.Child("stableWindow"), d.String(),
			fmt.Sprintf("stableWindow must be between %s and %s", MinStableWindow, MaxStableWindow)))
	}

	t := p.Child("timeouts")
	if d := s.RequestTimeout(); d <= 0 {
		errs = append(errs, field.Invalid(t.Child("request"), d.String(), "request timeout must be positive"))
	}
	if d := s.ColdStartTimeout(); d <= 0 {
		errs = append(errs, field.Invalid(t.Child("coldStart"), d.String(), "coldStart timeout must be positive"))
	}
	return errs
}

// validateKube checks what only matters on Kubernetes, where an image runs
// next to Flint's sidecar and volumes.
func (s *AgentSpec) validateKube(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	c := p.Child("container")
	if s.Container.Image == "" {
		errs = append(errs, field.Required(c.Child("image"),
			"set image: the container image the agent runs on Kubernetes (local mode runs command instead)"))
	}
	if port := s.Container.Port; port == ServingPort || port == AdminPort {
		errs = append(errs, field.Invalid(c.Child("port"), port,
			fmt.Sprintf("ports %d and %d belong to the flint-proxy sidecar in the agent's pod: make the agent listen on another port", ServingPort, AdminPort)))
	}
	volumes := map[string]bool{}
	if pod := s.Pod; pod != nil {
		pp := p.Child("pod")
		for k := range pod.Labels {
			if strings.HasPrefix(k, LabelPrefix) || k == LabelManagedBy {
				errs = append(errs, field.Invalid(pp.Child("labels"), k,
					"pod label keys under flint.dev/ and app.kubernetes.io/managed-by are set by Flint: use other keys"))
			}
		}
		for i, v := range pod.Volumes {
			volumes[v.Name] = true
			if strings.HasPrefix(v.Name, ReservedPrefix) {
				errs = append(errs, field.Invalid(pp.Child("volumes").Index(i).Child("name"), v.Name,
					"volume names starting with flint- are used by Flint: rename the volume"))
			}
		}
	}
	for _, m := range s.Container.VolumeMounts {
		if !volumes[m.Name] {
			errs = append(errs, field.Invalid(c.Child("volumeMounts"), m.Name,
				"every container.volumeMounts[].name must name a volume in pod.volumes"))
			break
		}
	}
	return errs
}
