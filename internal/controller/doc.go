// Package controller reconciles Agents into what runs them on Kubernetes: a
// Deployment (the agent's container plus the `flint proxy` sidecar as a
// native sidecar) and a Service, both owned by the Agent, and reports the
// agent's state in its status.
//
// The autoscaler does not touch Deployments: it writes the Agent's scale
// subresource (spec.scaling.replicas) and the reconciler copies it to the
// Deployment. The manager applies its objects with server-side apply and
// owns only the fields it sets, so it never fights defaulting or other
// controllers. docs/manager.md describes the pod shape and the shutdown
// ordering.
package controller

// The manager's permissions, as the chart grants them
// (deploy/helm/flint/templates/manager-rbac.yaml; docs/manager.md). The
// manager writes Agents only through status and scale and never deletes
// what it creates (the garbage collector does, through owner references):
// update/patch on agents and delete on Deployments and Services are the
// chart's headroom, unused by this code.
//
// +kubebuilder:rbac:groups=flint.dev,resources=agents,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=flint.dev,resources=agents/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=flint.dev,resources=agents/scale,verbs=get;update;patch
// +kubebuilder:rbac:groups=flint.dev,resources=agents/finalizers,verbs=update
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;create;update,namespace=flint-system
