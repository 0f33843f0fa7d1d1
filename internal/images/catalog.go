package images

// Spec is one image Build can make: a static Go binary on a small base.
type Spec struct {
	// Name is the image's short name and its binary's name (the last
	// element of Package, which is what `go build -o DIR/` calls it).
	Name string
	// Package is the main package, relative to the module root.
	Package string
	// Repository is the image's path below the registry.
	Repository string
	// Title and Description become OCI labels.
	Title, Description string
	// User is the numeric "uid:gid" the container runs as.
	User string
	// Base adds the base layer: CA certificates, /etc/passwd and /etc/group
	// naming the non-root user, a home directory and a writable /tmp.
	Base bool
	// Ports the program listens on by default (documentation only).
	Ports []string
}

// BinDir is where every image keeps its binary: BinDir/<Name>. The flint
// binary sits at FlintPath, a stable path an init container can copy it
// from (the stdio bridge in front of a stdio MCP server's image).
const (
	BinDir    = "/usr/local/bin"
	FlintPath = BinDir + "/flint"
)

// NonRoot is the user and group the images run as: distroless's "nonroot",
// numeric so that runAsNonRoot can check it without an /etc/passwd lookup.
const NonRoot = "65532:65532"

// Catalog is every image Build knows, in the order Build writes them.
func Catalog() []Spec {
	return []Spec{
		{
			Name: "flint", Package: "./cmd/flint", Repository: "flint",
			Title:       "flint",
			Description: "Flint: the manager, the gateway and the per-replica sidecar (flint proxy, flint stdio-bridge) in one binary",
			User:        NonRoot, Base: true,
		},
		{
			Name: "echo", Package: "./examples/echo", Repository: "examples/echo",
			Title: "flint example: echo", Description: "An HTTP agent that echoes each request as JSON and streams SSE from /sse",
			User: NonRoot, Base: true, Ports: []string{"8080/tcp"},
		},
		{
			Name: "mcp-go", Package: "./examples/mcp-go", Repository: "examples/mcp-go",
			Title: "flint example: mcp-go", Description: "An MCP server (streamable HTTP) on the official Go SDK",
			User: NonRoot, Base: true, Ports: []string{"8080/tcp"},
		},
		{
			// Only the stdio server: on Kubernetes it runs under
			// `flint stdio-bridge`, copied in from the flint image (FlintPath).
			Name: "mcp-stdio", Package: "./examples/mcp-stdio", Repository: "examples/mcp-stdio",
			Title: "flint example: mcp-stdio", Description: "A stdio MCP server, served over HTTP by flint stdio-bridge",
			User: NonRoot, Base: true,
		},
		{
			Name: "a2a", Package: "./examples/a2a", Repository: "examples/a2a",
			Title: "flint example: a2a", Description: "An A2A agent with an agent card and streaming answers",
			User: NonRoot, Base: true, Ports: []string{"8080/tcp"},
		},
		{
			// The sandbox (pause) image of a node's container runtime, for
			// clusters that cannot pull registry.k8s.io/pause (the real-node
			// tests). 65535 is the upstream pause image's user.
			Name: "pause", Package: "./hack/pause", Repository: "pause",
			Title: "flint pause", Description: "Holds a pod sandbox's namespaces: blocks until SIGTERM or SIGINT and reaps orphans",
			User: "65535:65535",
		},
	}
}
