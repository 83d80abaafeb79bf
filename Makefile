# cairn — build, demo and test. `make demo` is the quickstart; `make test`
# runs every check CI runs (after .ci/run has installed what they need).
GO       ?= go
BIN      := bin/cairn
STATICCHECK ?= $(shell command -v staticcheck || echo $(HOME)/go/bin/staticcheck)
# Packages whose concurrency the race detector watches.
RACE_PKGS := ./internal/repository/... ./internal/archiver/... ./internal/restorer/... ./internal/index/... ./internal/backend/... ./internal/server/...

.PHONY: build demo test lint unit race fuzz clean

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
	$(GO) test -count=1 ./...

race:
	$(GO) test -count=1 -race $(RACE_PKGS)

# Every fuzz target runs 50000 executions; a crash fails the build.
fuzz:
	./scripts/fuzz.sh 50000

test: lint unit race fuzz

clean:
	rm -rf bin
