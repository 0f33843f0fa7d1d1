package nodeagent

import "testing"

func TestRewriteAddrsMapsPodLocalAddressesToPodIP(t *testing.T) {
	const ip = "127.0.1.7"
	for in, want := range map[string]string{
		// Listen addresses with no host: the pod's own addresses.
		":8080":                     ip + ":8080",
		"-serving-addr=:8012":       "-serving-addr=" + ip + ":8012",
		"--admin-addr=:8022":        "--admin-addr=" + ip + ":8022",
		"-upstream=127.0.0.1:8080":  "-upstream=" + ip + ":8080",
		"http://localhost:9000/x":   "http://" + ip + ":9000/x",
		"0.0.0.0":                   ip,
		"0.0.0.0:80":                ip + ":80",
		"[::1]:8080":                ip + ":8080",
		"[::]:8080":                 ip + ":8080",
		"127.0.0.1":                 ip,
		"a=localhost,b=127.0.0.1:1": "a=" + ip + ",b=" + ip + ":1",
		// Left alone: not whole tokens, not addresses, not a flag value.
		"127.0.0.10:80":        "127.0.0.10:80",
		"mylocalhost:80":       "mylocalhost:80",
		"localhost.example:80": "localhost.example:80",
		"example.com:443":      "example.com:443",
		"proxy":                "proxy",
		"x=:8080":              "x=:8080",
		"-timeout=10s":         "-timeout=10s",
		":http":                ":http",
		"":                     "",
	} {
		if got := rewriteAddrs(in, ip); got != want {
			t.Errorf("rewriteAddrs(%q) = %q, want %q", in, got, want)
		}
	}
}
