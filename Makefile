# Everything CI runs is here; `make test` is the README's test command.
GO        ?= go
FUZZTIME  ?= 10s
PKGS      := ./...
STREAMED  := ^(TestScenario|TestSourceSettings|TestSyncValidFile|TestCheck|TestUploadListsEveryError|TestApproveAppliesTheHeldPlan|TestRetryKeepsItsOwnRawRecord|TestKillDuringSync|TestKillAfterCommit|TestSecretsStayHidden|TestFaultFileChangedWhileRead|TestFaultRawRecordUnwritable|TestRawRecord.*|TestSync.*|TestFileReplacedBeforeRead)$$

.PHONY: build test unit deploy-check fuzz lint bench bench-large screenshots demo clean soak

# the version `roster version` and the admin page show: the nearest tag,
# commits since and the commit, "-dirty" with uncommitted changes
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo unknown)

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-X main.version=$(VERSION)' -o roster ./cmd/roster

# unit and end-to-end tests on SQLite and PostgreSQL (the admin page in
# headless Chromium), the deployment artifacts checked by their tools,
# then every fuzz target for a bounded time
test: unit deploy-check fuzz

unit:
	$(GO) test -count=1 -timeout=25m $(PKGS)
	# the snapshot scenarios again, every csv file synced as a stream
	ROSTER_TEST_STREAM=1 $(GO) test -count=1 -run '$(STREAMED)' ./cmd/roster/ ./daemon/tasks/

fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzRead ./sources/csv/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzPasswordNeverInErrors ./sources/csv/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzParse ./config/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzParseRate ./config/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzPlanSnapshot ./daemon/reconcile/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzStreamMatchesWhole ./daemon/reconcile/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzLookupPath ./scim/schema/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzParse ./scim/filter/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzParsePath ./scim/filter/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzSCIMFilter ./daemon/store/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzSCIMFilterComplement ./daemon/store/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzApply ./scim/patch/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzApplyCustom ./scim/patch/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzResource ./scim/patch/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzApplyExcept ./scim/patch/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzParsePath ./daemon/attrs/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzDecode ./sources/push/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzPasswordNeverInPushErrors ./sources/push/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzRawPages ./daemon/tasks/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzDecodePage ./sources/httpapi/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzReadLDIF ./sources/ldap/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzFromLDIF ./sources/ldap/

# deployment artifacts of deploy/, checked with the tools operators use:
# systemd-analyze, promtool, strict Kubernetes decoding, a real scrape
# (a nested module, so that the Kubernetes libraries stay out of roster's)
deploy-check:
	cd deploy && $(GO) test -count=1 ./...

# staticcheck from PATH, else where `go install` puts it
STATICCHECK ?= $(shell command -v staticcheck 2>/dev/null || echo "$$($(GO) env GOPATH)/bin/staticcheck")

lint:
	@test -x "$(STATICCHECK)" || { echo "make lint: staticcheck is not installed ($(STATICCHECK) not found)."; \
		echo "Install it with: $(GO) install honnef.co/go/tools/cmd/staticcheck@latest"; exit 1; }
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: the files above need formatting"; exit 1; }
	$(GO) vet $(PKGS)
	$(STATICCHECK) $(PKGS)
	@test -z "$$(cd deploy && gofmt -l .)" || { cd deploy && gofmt -l .; echo "gofmt: the files above need formatting"; exit 1; }
	cd deploy && $(GO) vet ./... && $(STATICCHECK) ./...

# SPEC §11 figures on 100,000 users and 1,000 groups, both stores (§12's
# sink benchmark among them)
bench:
	$(GO) test -run='^$$' -bench=. -benchtime=1x -timeout=60m ./daemon/tasks/ ./daemon/password/ ./sources/csv/
	# a sink provisioning a second roster serve on loopback: 100,000 users, then 1% changed
	$(GO) test -run='^$$' -bench=Sink100k -benchtime=1x -timeout=120m ./cmd/roster/

# SPEC §11's memory target: `roster sync` of 1,000,000 users (ROSTER_BENCH_USERS), peak RSS, both stores
bench-large:
	$(GO) test -run='^$$' -bench=SyncLarge -benchtime=1x -timeout=60m ./cmd/roster/

# refresh the admin page's screenshots in docs/img (the README shows them);
# a picture is rewritten only when its pixels change
screenshots:
	ROSTER_SCREENSHOTS=$(CURDIR)/docs/img $(GO) test -count=1 -run '^TestAdminUIBrowser$$' ./cmd/roster/

# the example: serve the sample staff from the embedded SQLite store on
# 127.0.0.1:$(PORT) until Ctrl-C (the README shows what to ask it). It runs
# on a copy in demo/ (ignored by git), so that an upload, an edit of
# demo/staff.csv or the database never touch a tracked file; the copy of
# staff.csv is made once and kept across runs, `make clean` removes it all.
PORT      ?= 8080
DEMO      := demo
demo: build $(DEMO)/roster.yaml $(DEMO)/staff.csv
	./roster serve --config $(DEMO)/roster.yaml --listen 127.0.0.1:$(PORT)

$(DEMO)/roster.yaml: deploy/examples/roster.yaml
	@mkdir -p $(DEMO)
	cp $< $@

$(DEMO)/staff.csv:
	@mkdir -p $(DEMO)
	cp deploy/examples/staff.csv $@

clean:
	rm -rf roster $(DEMO) deploy/examples/roster.db* deploy/examples/log

# the fault and load suite stretched: the kill loop repeats and the load
# test runs for SOAK in all (any Go duration; half kill loop, half load),
# then the worst SCIM filters against look-ups, and the load test with
# hostile requests beside it (TestLoadHostile, soak only), each for an
# eighth of SOAK a store
SOAK      ?= 1h
soak:
	ROSTER_SOAK=$(SOAK) $(GO) test -count=1 -timeout=2h -v -run='^(TestFault|TestLoad|TestHostileQueries)' ./cmd/roster/
