# cairn — build, demo and test. `make demo` is the quickstart; `make test`
# runs every check CI runs (after .ci/run has installed what they need).
GO       ?= go
BIN      := bin/cairn
STATICCHECK ?= $(shell command -v staticcheck || echo $(HOME)/go/bin/staticcheck)
# Packages whose concurrency the race detector watches.
RACE_PKGS := ./internal/repository/... ./internal/archiver/... ./internal/restorer/... ./internal/index/... ./internal/backend/... ./internal/server/...

.PHONY: build demo test lint unit race fuzz cover clean

build:
	$(GO) build -o $(BIN) ./cmd/cairn

demo: build
	./scripts/demo.sh $(BIN)

lint:
	$(GO) mod tidy -diff
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

unit:
	$(GO) test -count=1 -timeout 45m ./...

race:
	$(GO) test -count=1 -race $(RACE_PKGS)

# Every fuzz target runs 50000 executions; a crash fails the build.
fuzz:
	./scripts/fuzz.sh 50000

test: lint unit race fuzz

# Coverage of unit and end-to-end tests together, per package. The e2e
# tests run a `go build -cover` binary (CAIRN_E2E_BIN) that writes its
# counters to CAIRN_E2E_GOCOVERDIR; unit test binaries write theirs beside them
# (-test.gocoverdir); go tool covdata merges both. Not part of `make test`:
# it runs every test once more. bin/cover/cover.out is for go tool cover -html.
# A subset: make cover COVER_PKGS="./internal/pack ./internal/e2e" COVER_FLAGS="-run TestRoundTrip"
COVER := $(abspath bin/cover)
cover:
	rm -rf $(COVER) && mkdir -p $(COVER)/unit $(COVER)/e2e $(COVER)/merged
	$(GO) build -cover -coverpkg=./... -o $(COVER)/cairn ./cmd/cairn
	CAIRN_E2E_BIN=$(COVER)/cairn CAIRN_E2E_GOCOVERDIR=$(COVER)/e2e \
		$(GO) test -count=1 -timeout 45m -cover -coverpkg=./... $(COVER_FLAGS) $(or $(COVER_PKGS),./...) -args -test.gocoverdir=$(COVER)/unit
	$(GO) tool covdata merge -i=$(COVER)/unit,$(COVER)/e2e -o=$(COVER)/merged
	$(GO) tool covdata textfmt -i=$(COVER)/merged -o=$(COVER)/cover.out
	@echo "== statement coverage per package (unit + e2e)"
	@awk -F'[: ]' 'NR > 1 { p = $$1; sub(/\/[^\/]*$$/, "", p); sub(/^github.com\/cairnbackup\/cairn\//, "", p); \
		n[p] += $$3; N += $$3; if ($$4 > 0) { c[p] += $$3; C += $$3 } } \
		END { for (p in n) printf "%-32s %5.1f%%\n", p, 100 * c[p] / n[p]; printf "%-32s %5.1f%%\n", "(total)", 100 * C / N }' \
		$(COVER)/cover.out | sort

clean:
	rm -rf bin
