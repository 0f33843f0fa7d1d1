package platform

import (
	"context"
	"io"
	"net/http"

	"github.com/flint-dev/flint/internal/wire"
)

// SidecarReady asks a replica's sidecar, on its admin port, whether it
// takes requests (GET /readyz, the kubelet's readiness probe too): its
// agent answers its own probe and it is not draining.
func SidecarReady(ctx context.Context, c *http.Client, ep Endpoint) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ep.AdminAddr+wire.PathReadyz, nil)
	if err != nil {
		return false
	}
	res, err := c.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 4<<10)) // keeps the connection for the next probe
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}
