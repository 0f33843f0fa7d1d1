package forward_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkHop is client → ReverseProxy → agent over loopback with each
// transport on the proxy's upstream side, for a GET and a POST with a
// small JSON body. Allocations count the whole process (client, proxy,
// agent); the difference between the two transports is the proxy's.
func BenchmarkHop(b *testing.B) {
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}`
	for _, im := range impls() {
		for _, method := range []string{"GET", "POST"} {
			b.Run(im.name+"/"+method, func(b *testing.B) {
				a := newAgent(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					_, _ = io.Copy(io.Discard, r.Body)
					_, _ = io.WriteString(w, `{"ok":true}`)
				}))
				rt := im.new()
				b.Cleanup(rt.(interface{ CloseIdleConnections() }).CloseIdleConnections)
				srv := front(b, rt, a.URL)
				tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
				defer tr.CloseIdleConnections()
				c := &http.Client{Transport: tr}
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						var rd io.Reader
						if method == "POST" {
							rd = strings.NewReader(body)
						}
						req, _ := http.NewRequest(method, srv.URL, rd)
						res, err := c.Do(req)
						if err != nil {
							b.Error(err)
							return
						}
						_, _ = io.Copy(io.Discard, res.Body)
						res.Body.Close()
					}
				})
			})
		}
	}
}
