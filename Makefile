# Connection manager. `make dev` runs everything locally; `make test` runs every test.
SHELL := /bin/bash
GO    ?= go
# Lambda functions: folder names under functions/. SAM's makefile build calls
# build-<LogicalId>, LogicalId being the folder in CamelCase + "Function".
FUNCTIONS := $(notdir $(wildcard functions/*))
# Lambda builds: no RPC mode (lambda.norpc), no paths, symbols or DWARF, and
# no inlining (-gcflags=all=-l): 0.6-0.9 MB less per bootstrap for a few
# per cent of CPU on hot paths (about 10% on the resolver's warm benchmark),
# in functions that mostly wait on DynamoDB, KMS and HTTP. Without it the
# connections bootstrap, which needs four SDK clients, is 10.6 MB.
LAMBDA_FLAGS := -tags lambda.norpc -trimpath -gcflags=all=-l -ldflags "-s -w"
# make build fails when a bootstrap is larger (bytes; 10 MB).
MAX_BOOTSTRAP := 10000000
LAMBDA_ENV   := GOOS=linux GOARCH=arm64 CGO_ENABLED=0

.PHONY: dev tour test test-go test-moto test-iam lint vet fmt-check cfn-lint asl-validate typecheck build bench load fuzz deploy clean tools

# make dev builds bin/dev with -v, so a first build (modules to download,
# a few hundred packages to compile) shows its progress, then runs it; it
# prints each phase of its start on stderr and the banner on stdout.
# -ldflags=-w leaves out DWARF (panics still have stack traces): it links
# in about 60% of the time, the part of a warm start that remains.
DEV_FLAGS := -ldflags=-w
dev: ## run the whole system locally on http://127.0.0.1:3000 (PORT overrides)
	@echo "dev: building bin/dev (go build -v names each package it compiles; a first build downloads modules and takes minutes)" >&2
	@$(GO) build -v $(DEV_FLAGS) -o bin/dev ./local/cmd/dev
	@exec bin/dev

# The README's tour, verbatim under bash -e, against a fresh make dev on a
# free port, then its end state checked (local/tour). make test runs it as
# part of test-go (go test ./...).
tour: ## run README.md's tour against a fresh make dev
	$(GO) test -count=1 -v -run TestREADMETour ./local/tour/

test: lint typecheck cfn-lint asl-validate test-go test-moto ## every test, as CI runs it

# Every package on the in-process minidyn and local-kms; this includes the
# least-privilege proof (local/iamproof), which runs on its own moto_server.
# It includes the Connections page in Chromium (local/browsertest), which
# fails, never skips, without /usr/bin/chromium (.ci/run installs Debian's)
# and the npm packages of package-lock.json.
test-go: node_modules/.package-lock.json
	$(GO) test -count=1 -timeout 10m ./...

# The correctness suites again, the same test binaries on moto_server, an
# independent DynamoDB and KMS (CONNMGR_TEST_BACKEND, read by local/stacktest
# and local/apitest). Scale tests skip themselves there, saying why. Needs
# moto_server: pip install 'moto[server]'.
MOTO_SUITES := ./shared/store/ ./shared/vault/... ./shared/outbox/ ./shared/oauth/ ./shared/resolver/ ./shared/expirycheck/ ./shared/manager/ ./shared/ratelimit/
test-moto: ## the correctness suites on moto_server
	CONNMGR_TEST_BACKEND=moto $(GO) test -count=1 -timeout 15m $(MOTO_SUITES)

test-iam: ## the least-privilege proof alone (test-go runs it too)
	$(GO) test -count=1 -v -run TestLeastPrivilege ./local/iamproof/

lint: vet fmt-check

# cfn-lint with aws-sam-translator checks template.yaml as CloudFormation
# sees it after the SAM transform (circular dependencies, bad references,
# properties). Any error or warning fails: fix it, or suppress that one check
# in the template's Metadata (cfn-lint: config: ignore_checks) at the
# narrowest level, with the reason beside it. .ci/run installs cfn-lint
# where it is missing.
cfn-lint: ## lint template.yaml (CloudFormation and SAM); errors and warnings fail
	@command -v cfn-lint >/dev/null 2>&1 || { echo "cfn-lint is not installed: pip install cfn-lint aws-sam-translator" >&2; exit 1; }
	cfn-lint template.yaml

# asl-validator is pinned in package-lock.json; `npm ci` installs it (.ci/run does).
ASL_FILES := $(wildcard statemachines/*.asl.json)
asl-validate: node_modules/.package-lock.json ## States Language check of every state machine, offline
	npx --no-install asl-validator $(foreach f,$(ASL_FILES),--json-path $(f))

# The Connections page is plain ES modules served as they are (make dev
# needs only Go); tsc, pinned in package-lock.json, type-checks them
# against web/types and emits nothing.
typecheck: node_modules/.package-lock.json ## type-check the page's modules (tsc --noEmit --checkJs)
	npx --no-install tsc -p web/tsconfig.json

node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# The load generator (local/loadgen) against a running `make dev` (start it
# in another terminal first): a mixed workload at each of LOAD_LEVELS
# concurrently, each level at most LOAD_DURATION and LOAD_REQUESTS; loopback
# only. Its smallest setting runs in `make test` (local/loadgen).
LOAD_URL      ?= http://127.0.0.1:3000
LOAD_LEVELS   ?= 1,4,16,64
LOAD_DURATION ?= 10s
LOAD_REQUESTS ?= 20000
load: ## mixed load on make dev at rising concurrency: requests/s, p50, p99, statuses per route
	$(GO) run ./local/cmd/load -url $(LOAD_URL) -levels $(LOAD_LEVELS) -duration $(LOAD_DURATION) -requests $(LOAD_REQUESTS)

bench: ## Go benchmarks, side by side in one run
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./...

# Fuzz targets: their seed corpora run in `make test`; `make fuzz` searches
# each for FUZZTIME (Go allows one fuzz target per run).
FUZZTIME ?= 30s
FUZZ_TARGETS := shared/identity:FuzzCanonicalPath shared/identity:FuzzParseList \
	shared/httpapi:FuzzDecodeJSON shared/httpapi:FuzzMatch shared/connection:FuzzCredentialErrors
fuzz: ## run every fuzz target for FUZZTIME
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $$t"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) ./$${t%%:*}/; \
	done

# What each bootstrap links is checked by local/sam TestContractLinks (in
# make test): the SDK clients of exactly the services its role may call.
build: ## every function's arm64 bootstrap in bin/<function>/bootstrap, with its size; fails above 10 MB
	@set -e; over=""; for f in $(FUNCTIONS); do \
		$(LAMBDA_ENV) $(GO) build $(LAMBDA_FLAGS) -o bin/$$f/bootstrap ./functions/$$f; \
		size=$$(wc -c < bin/$$f/bootstrap); \
		awk -v f=$$f -v s=$$size -v max=$(MAX_BOOTSTRAP) 'BEGIN { printf "%-16s %6.2f MB%s\n", f, s/1e6, (s > max ? "  over the limit" : "") }'; \
		if [ $$size -gt $(MAX_BOOTSTRAP) ]; then over="$$over $$f"; fi; \
	done; \
	if [ -n "$$over" ]; then echo "bootstraps over $(MAX_BOOTSTRAP) bytes:$$over" >&2; exit 1; fi

deploy: ## build with SAM and deploy (needs SAM CLI and AWS credentials; the first time: sam deploy --guided)
	sam build && sam deploy

clean:
	rm -rf bin .aws-sam

# --- SAM makefile builds: one target per function, writing $(ARTIFACTS_DIR)/bootstrap.
build-ConnectionsFunction:
	$(LAMBDA_ENV) $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/connections
build-ResolveFunction:
	$(LAMBDA_ENV) $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/resolve
build-OauthCallbackFunction:
	$(LAMBDA_ENV) $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/oauth-callback
build-RunsFunction:
	$(LAMBDA_ENV) $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/runs
build-RunStepFunction:
	$(LAMBDA_ENV) $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/run-step
build-SuspendRunFunction:
	$(LAMBDA_ENV) $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/suspend-run
build-FinishRunFunction:
	$(LAMBDA_ENV) $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/finish-run
build-ResumeRunsFunction:
	$(LAMBDA_ENV) $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/resume-runs
build-ExpiryCheckFunction:
	$(LAMBDA_ENV) $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/expiry-check
build-WebFunction:
	$(LAMBDA_ENV) $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/web
