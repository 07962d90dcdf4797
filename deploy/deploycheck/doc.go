// Package deploycheck holds the tests that check the deployment artifacts
// of deploy/ with real tools: systemd-analyze for the unit, the Go
// toolchain for the container build line, the Kubernetes API types for the
// manifests, promtool for the dashboard queries and the alert rules, and
// the roster binary itself for the list of exported metrics.
//
// Run them with `make deploy-check` (cd deploy && go test -count=1 ./...).
// A tool that is missing skips its test with a loud message, unless CI=true,
// where it fails.
package deploycheck
