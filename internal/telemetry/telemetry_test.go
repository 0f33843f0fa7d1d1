package telemetry

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
)

func envOf(m map[string]string) Env { return func(k string) string { return m[k] } }

func TestExportersFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    string // comma-joined exporters, "" = off
		wantErr string
	}{
		{name: "nothing set: off", env: nil},
		{name: "endpoint alone turns otlp on", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, want: "otlp"},
		{name: "traces endpoint alone turns otlp on", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, want: "otlp"},
		{name: "exporter named", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, want: "otlp"},
		{name: "list", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp, Console"}, want: "otlp,console"},
		{name: "none wins over an endpoint", env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}},
		{name: "sdk disabled", env: map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console"}},
		{name: "unknown exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, wantErr: "supports otlp, console and none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := exportersFromEnv(envOf(tc.env))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || strings.Join(got, ",") != tc.want {
				t.Fatalf("got %v, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestFromEnvOffReturnsNil(t *testing.T) {
	tr, err := FromEnv(context.Background(), "flint-test", envOf(nil), io.Discard)
	if err != nil || tr != nil {
		t.Fatalf("FromEnv with nothing set = %v, %v; want nil, nil", tr, err)
	}
	// A nil pipeline wraps nothing.
	h := http.NotFoundHandler()
	if got := tr.Handler(h, "x", nil); got == nil || tr.Enabled() || tr.Tracer("x") != nil {
		t.Fatal("nil Tracing must be inert")
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestFromEnvRefusesGRPC(t *testing.T) {
	_, err := FromEnv(context.Background(), "flint-test", envOf(map[string]string{
		"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
	}), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "http/protobuf") {
		t.Fatalf("err = %v, want a hint to use http/protobuf", err)
	}
}

func TestConsoleExporterWritesSpans(t *testing.T) {
	var out bytes.Buffer
	tr, err := FromEnv(context.Background(), "flint-test", envOf(map[string]string{
		"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "from-env",
	}), &out)
	if err != nil || tr == nil {
		t.Fatalf("FromEnv: %v, %v", tr, err)
	}
	_, end := Start(context.Background(), tr.Tracer("test"), "console-span")
	end(nil)
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"console-span", "from-env"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("console output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestOTLPExportFromEnv checks the standard variables reach the exporter:
// spans are POSTed to OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces with the
// headers from OTEL_EXPORTER_OTLP_HEADERS.
func TestOTLPExportFromEnv(t *testing.T) {
	var posts atomic.Int32
	var auth atomic.Value
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" {
			auth.Store(r.Header.Get("Authorization"))
			posts.Add(1)
		}
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer secret")
	tr, err := FromEnv(context.Background(), "flint-test", os.Getenv, io.Discard)
	if err != nil || tr == nil {
		t.Fatalf("FromEnv: %v, %v", tr, err)
	}
	_, end := Start(context.Background(), tr.Tracer("test"), "exported")
	end(nil)
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if posts.Load() == 0 {
		t.Fatal("no spans reached the collector")
	}
	if got, _ := auth.Load().(string); got != "Bearer secret" {
		t.Fatalf("Authorization = %q, want the header from OTEL_EXPORTER_OTLP_HEADERS", got)
	}
}

func TestStartWithoutTracerDoesNothing(t *testing.T) {
	ctx := context.Background()
	got, end := Start(ctx, nil, "x")
	end(nil)
	if got != ctx {
		t.Fatal("Start without a tracer must return ctx unchanged")
	}
	if n := testing.AllocsPerRun(100, func() { _, e := Start(ctx, nil, "x"); e(nil) }); n != 0 {
		t.Fatalf("Start without a tracer allocates %v times", n)
	}
}
