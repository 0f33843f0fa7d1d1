package realnode_test

import (
	"net/http"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/flint-dev/flint/test/internal/load"
)

// startLoad sends rate authenticated GETs per second to url (through the
// gateway's Service) until Stop, from inside the node's network namespace.
func (in *flintInstall) startLoad(url string, rate int) *load.Load {
	atk := vegeta.NewAttacker(vegeta.Client(node.HTTPClient()), vegeta.Timeout(90*time.Second), vegeta.MaxWorkers(500), vegeta.KeepAlive(true))
	hdr := http.Header{"Authorization": {"Bearer " + in.apiKey}}
	return load.Start(atk, vegeta.NewStaticTargeter(vegeta.Target{Method: "GET", URL: url, Header: hdr}), rate)
}
