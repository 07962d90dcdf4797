// Package deploycheck holds the tests that check the deployment artifacts
// of deploy/ with real tools: systemd-analyze for the unit (installed as
// the docs install it), the Go toolchain for the container build line and
// .dockerignore, the Kubernetes API types for the manifests, promtool for
// the dashboard queries and the alert rules, and the roster binary itself
// for the list of exported metrics and for refusing the example configs'
// placeholder tokens. Where docs/operations.md names what a manifest or
// example holds (the Secret to create, the metrics address to scrape), the
// tests read it there and compare.
//
// Run them with `make deploy-check` (cd deploy && go test -count=1 ./...).
// A tool that is missing skips its test with a loud message, unless CI=true,
// where it fails.
package deploycheck
