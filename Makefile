# Everything CI runs is here; `make test` is the README's test command.
GO        ?= go
FUZZTIME  ?= 10s
PKGS      := ./...
STREAMED  := ^(TestScenario|TestSourceSettings|TestSyncValidFile|TestCheck|TestUploadListsEveryError|TestApproveAppliesTheHeldPlan|TestRetryKeepsItsOwnRawRecord|TestKillDuringSync|TestKillAfterCommit|TestSecretsStayHidden|TestFaultFileChangedWhileRead|TestFaultRawRecordUnwritable|TestSync.*)$$

.PHONY: build test unit deploy-check fuzz lint bench bench-large screenshots demo clean soak

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o roster ./cmd/roster

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
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzPlanSnapshot ./daemon/reconcile/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzStreamMatchesWhole ./daemon/reconcile/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzLookupPath ./scim/schema/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzParse ./scim/filter/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzParsePath ./scim/filter/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzSCIMFilter ./daemon/store/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzSCIMFilterComplement ./daemon/store/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzApply ./scim/patch/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzResource ./scim/patch/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzParsePath ./daemon/attrs/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzDecode ./sources/push/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzPasswordNeverInPushErrors ./sources/push/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzDecodePage ./sources/httpapi/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzReadLDIF ./sources/ldap/
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz FuzzFromLDIF ./sources/ldap/

# deployment artifacts of deploy/, checked with the tools operators use:
# systemd-analyze, promtool, strict Kubernetes decoding, a real scrape
# (a nested module, so that the Kubernetes libraries stay out of roster's)
deploy-check:
	cd deploy && $(GO) test -count=1 ./...

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: the files above need formatting"; exit 1; }
	$(GO) vet $(PKGS)
	staticcheck $(PKGS)
	@test -z "$$(cd deploy && gofmt -l .)" || { cd deploy && gofmt -l .; echo "gofmt: the files above need formatting"; exit 1; }
	cd deploy && $(GO) vet ./... && staticcheck ./...

# SPEC §11 figures on 100,000 users and 1,000 groups, both stores
bench:
	$(GO) test -run='^$$' -bench=. -benchtime=1x -timeout=60m ./daemon/tasks/ ./daemon/password/ ./sources/csv/

# SPEC §11's memory target: `roster sync` of 1,000,000 users (ROSTER_BENCH_USERS), peak RSS, both stores
bench-large:
	$(GO) test -run='^$$' -bench=SyncLarge -benchtime=1x -timeout=60m ./cmd/roster/

# refresh the admin page's screenshots in docs/img (the README shows them)
screenshots:
	ROSTER_SCREENSHOTS=$(CURDIR)/docs/img $(GO) test -count=1 -run '^TestAdminUIBrowser$$' ./cmd/roster/

# the example: serve the sample staff from the embedded SQLite store on
# 127.0.0.1:8080 until Ctrl-C (the README shows what to ask it)
demo: build
	./roster serve --config deploy/examples/roster.yaml

clean:
	rm -rf roster deploy/examples/roster.db* deploy/examples/log


# the fault and load suite stretched: the kill loop repeats and the load
# test runs for SOAK in all (any Go duration; half kill loop, half load),
# then the worst SCIM filters against look-ups for an eighth of SOAK a store
SOAK      ?= 1h
soak:
	ROSTER_SOAK=$(SOAK) $(GO) test -count=1 -timeout=2h -v -run='^(TestFault|TestLoad|TestHostileQueries)' ./cmd/roster/
