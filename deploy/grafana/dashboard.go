// Package grafana holds Flint's Grafana dashboard (flint-dashboard.json), so
// tests can check it against the metrics Flint really exports and programs
// can serve or install it.
package grafana

import _ "embed"

// Dashboard is the dashboard's JSON, ready to import into Grafana.
//
//go:embed flint-dashboard.json
var Dashboard []byte
