// Package nodeagent is the cluster end-to-end harness's test node agent: a
// fake kubelet that registers a Node, binds pending pods to it (standing in
// for the scheduler) and runs their containers as local processes, so that
// kube-apiserver + kube-controller-manager (internal/testenv) behave like a
// one-node cluster: Deployments get running, probed, ready pods, and the
// EndpointSlice controller publishes them.
//
// What is emulated, and how:
//
//   - Node: created Ready with generous capacity; its Lease in
//     kube-node-lease is renewed every HeartbeatInterval (10s) and the Ready
//     condition's heartbeat every 4, well inside kube-controller-manager's
//     node-monitor-grace-period (50s), so the node lifecycle controller
//     never taints the node or evicts its pods. No kube-controller-manager
//     flags are needed.
//   - Scheduling: every pod with no spec.nodeName, in a watched namespace
//     (Config.Namespaces), for the default scheduler, not terminating, is
//     bound to the node through the pods/binding subresource, as the
//     scheduler does. A pod with another schedulerName stays Pending.
//   - Images: Config.Images maps an image to an executable, its default
//     entrypoint. An unknown image reports ErrImagePull, then
//     ImagePullBackOff, and is retried with back-off (SetImage can add it).
//   - Containers: command/args as Kubernetes composes them (command
//     replaces the entrypoint, args follow; $(VAR) expansion), env with
//     envFrom, fieldRef (metadata.name/namespace/uid/labels/annotations,
//     spec.nodeName, spec.serviceAccountName, status.podIP(s),
//     status.hostIP(s)), configMapKeyRef and secretKeyRef. See buildLaunch
//     for how a command's executable is found. Each container instance is a
//     process group; its stop signal goes to the main process only (as a
//     runtime signals PID 1) and, once the main process exits, the rest of
//     the group is SIGKILLed (as when a PID namespace ends). Output goes to
//     Config.Output prefixed "ns/pod/container | " and is kept for Logs.
//   - Pod network: each pod gets an address of its own (PREFIX1-254) as its
//     pod IP, and pod-local addresses in its configuration are rewritten to
//     it (see rewrite.go for exactly what is rewritten, and why).
//   - Init containers (regular ones run to completion in order) and native
//     sidecars (KEP-753: an init container with restartPolicy Always is
//     started in order, the next one waits until it has started, i.e. its
//     startup probe passed; it is restarted whenever it exits and stopped
//     after the main containers).
//   - Probes: startup, readiness and liveness with exec, httpGet and
//     tcpSocket; initialDelaySeconds, periodSeconds (0 means 1),
//     timeoutSeconds, successThreshold and failureThreshold. A failed
//     liveness or startup probe restarts the container.
//   - Restarts per restartPolicy with the kubelet's back-off shape (first
//     restart at once, then RestartBackoff doubling up to
//     MaxRestartBackoff), reported as CrashLoopBackOff with the last
//     termination state.
//   - Pod status, written only when it changed: phase (the kubelet's
//     getPhase), podIP(s), hostIP(s), startTime, container and init
//     container statuses, conditions PodReadyToStartContainers,
//     Initialized, ContainersReady, Ready (readiness gates honoured) and
//     PodScheduled.
//   - Deletion: see podWorker.shutdown for the kubelet's order (preStop
//     hooks, stop signal, sidecars last in reverse order, SIGKILL at the
//     grace period); then a terminal phase is written and the object is
//     deleted with grace period 0. A pod deleted outright (force delete)
//     has its processes stopped within Config.StopTimeout, without hooks.
//
// Left out: volumes and volume mounts (containers see the host's files),
// resource limits, resourceFieldRef, gRPC probes, postStart hooks, image
// or spec changes of a running pod, ephemeral containers, in-place
// resize, Events, exec/attach/port-forward, kubectl logs through the API
// (use Agent.Logs), static pods, and IPv6.
//
// Kubernetes refuses loopback addresses in EndpointSlices, so with the
// default 127.0.1.x pod IPs the EndpointSlice controller cannot publish
// pods. Tests that need EndpointSlices (anything routing like Flint's
// gateway) run in a test/cluster/podnet network namespace and set
// IPPrefix/HostIP to podnet.PodIPPrefix/podnet.HostIP.
package nodeagent
