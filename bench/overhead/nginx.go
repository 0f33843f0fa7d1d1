package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/flint-dev/flint/bench/internal/procs"
)

// nginxConf is one nginx reverse-proxy hop set up as Flint's hops are, so
// the comparison is like for like: a keep-alive pool to the upstream over
// HTTP/1.1, no response buffering (Flint streams), no access log (Flint
// logs no request lines), one worker per core (Flint's GOMAXPROCS), and
// the forwarding headers Flint sets.
const nginxConf = `worker_processes %d;
daemon off;
master_process on;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
worker_rlimit_nofile 65536;
events {
    worker_connections 16384;
    multi_accept on;
}
http {
    access_log off;
    client_body_temp_path %[2]s/body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    upstream next {
        server %[4]s;
        keepalive 256;
        keepalive_requests 1000000;
    }
    server {
        listen %[3]s;
        location / {
            proxy_pass http://next;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_buffering off;
            proxy_request_buffering off;
        }
    }
}
`

// nginxBinary finds nginx (Debian's nginx-light installs /usr/sbin/nginx,
// which is not on every user's PATH).
func nginxBinary() (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx", nil
	}
	return "", fmt.Errorf("nginx not found: install it (apt-get install nginx-light; hack/bench.sh does) or run with -nginx=false")
}

// startNginx runs one nginx hop listening on listen and proxying to
// upstream, with its own prefix directory under dir, as g's next process:
// the master, whose workers cpuTime finds as its children.
func startNginx(g *procs.Group, bin, dir, name, listen, upstream string) error {
	prefix := filepath.Join(dir, name)
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		return err
	}
	conf := filepath.Join(prefix, "nginx.conf")
	text := fmt.Sprintf(nginxConf, runtime.NumCPU(), prefix, listen, upstream)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return err
	}
	// -e: without it nginx first opens the packaged error log, which an
	// unprivileged user cannot write.
	return g.Start(filepath.Join(prefix, "stderr.log"), nil, bin, "-p", prefix, "-c", conf, "-e", filepath.Join(prefix, "error.log"))
}
