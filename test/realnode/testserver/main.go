// Command testserver is the workload of the real-node suite: a small HTTP
// server whose answers let a test see, from outside the pod, what happened
// inside it.
//
//	GET /            "ok <hostname>"
//	GET /resolve?name=N  the addresses N resolves to through the pod's DNS
//	GET /state       "serving", or "terminating" once SIGTERM arrived
//	GET /dial?addr=A "connected" if a TCP connection to A opens
//
// On SIGTERM it keeps serving for $DRAIN (a Go duration, default 0), then
// exits 0; a test that gives it less grace than that sees it killed.
package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	drain, err := time.ParseDuration(envOr("DRAIN", "0s"))
	if err != nil {
		log.Fatalf("DRAIN: %v", err)
	}
	host, _ := os.Hostname()
	var terminating atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "ok %s\n", host)
	})
	mux.HandleFunc("GET /state", func(w http.ResponseWriter, _ *http.Request) {
		if terminating.Load() {
			fmt.Fprintln(w, "terminating")
			return
		}
		fmt.Fprintln(w, "serving")
	})
	mux.HandleFunc("GET /resolve", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		addrs, err := net.DefaultResolver.LookupHost(ctx, r.URL.Query().Get("name"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		fmt.Fprintln(w, strings.Join(addrs, " "))
	})
	mux.HandleFunc("GET /dial", func(w http.ResponseWriter, r *http.Request) {
		conn, err := net.DialTimeout("tcp", r.URL.Query().Get("addr"), 3*time.Second)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		conn.Close()
		fmt.Fprintln(w, "connected")
	})
	srv := &http.Server{Addr: ":" + port, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		terminating.Store(true)
		log.Printf("SIGTERM: draining for %s", drain)
		time.Sleep(drain)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	log.Printf("listening on :%s", port)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
	log.Print("exiting")
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
