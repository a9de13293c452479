# mwan3d — build, test and release targets. Run as root for the kernel tests.

GO        ?= go
PKGS      ?= ./...
BIN       := build/mwan3d
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
FUZZTIME  ?= 10s
BENCHTIME ?= 1s
# Debian packages the kernel tests and the demo call (nft for dumps, conntrack, ip;
# iptables and ipset to plant legacy mwan3 leftovers for the migration sweep test;
# ping for `mwan3 use … ping`).
DEB_DEPS  := nftables conntrack iproute2 iptables ipset iputils-ping

# name GOOS GOARCH extra-env, one per cross target.
CROSS := \
	linux-amd64:linux:amd64: \
	linux-arm64:linux:arm64: \
	linux-armv7:linux:arm:GOARM=7 \
	linux-mips:linux:mips:GOMIPS=softfloat \
	linux-mipsle:linux:mipsle:GOMIPS=softfloat

.PHONY: all build test vet fmt-check deps cross fuzz bench gobench demo clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/mwan3d

# deps installs what the kernel tests need when it is missing (root only).
deps:
	@missing=""; \
	command -v nft >/dev/null 2>&1 || missing="$$missing nftables"; \
	command -v conntrack >/dev/null 2>&1 || missing="$$missing conntrack"; \
	command -v ip >/dev/null 2>&1 || missing="$$missing iproute2"; \
	command -v iptables >/dev/null 2>&1 || missing="$$missing iptables"; \
	command -v ipset >/dev/null 2>&1 || missing="$$missing ipset"; \
	command -v ping >/dev/null 2>&1 || missing="$$missing iputils-ping"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		else \
			echo "missing:$$missing (kernel tests will skip; run as root to install)"; \
		fi; \
	fi

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

test: deps fmt-check vet
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	GOOS=linux GOARCH=mipsle GOMIPS=softfloat CGO_ENABLED=0 $(GO) build -o /dev/null $(PKGS)

cross:
	@mkdir -p build
	@set -e; for t in $(CROSS); do \
		name=$${t%%:*}; rest=$${t#*:}; os=$${rest%%:*}; rest=$${rest#*:}; arch=$${rest%%:*}; extra=$${rest#*:}; \
		env CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $$extra $(GO) build -trimpath -ldflags '$(LDFLAGS)' \
			-o build/mwan3d-$$name ./cmd/mwan3d; \
		printf '%-28s %9d bytes\n' build/mwan3d-$$name $$(stat -c %s build/mwan3d-$$name); \
	done

# fuzz runs every Fuzz target of every package for FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$f"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

# bench prints one table of the figures that matter (apply latency, status
# under load, detection, CPU per round, memory, binary sizes) against their
# budgets, each the median of several runs; as root for all of them (about
# 8 minutes). BENCHFLAGS: -quick, -only REGEXP, -v (see internal/benchtable).
bench:
	$(GO) run ./internal/benchtable $(BENCHFLAGS)

# gobench runs every Go benchmark of PKGS once, as plain `go test -bench`.
gobench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) $(PKGS)

# demo builds mwan3d and the demo (internal/demo) and runs it as root: two
# WANs in network namespaces, the daemon on the shipped default configuration,
# a live status table, wan cut and restored. DEMOFLAGS passes flags to it
# (e.g. DEMOFLAGS='-cut upstream'; see build/mwan3d-demo -h).
DEMOFLAGS ?=
demo:
	@if [ "$$(id -u)" != 0 ]; then \
		echo "make demo: needs root (it builds network namespaces, routes and nftables rules): run sudo make demo" >&2; \
		exit 1; \
	fi
	@$(MAKE) --no-print-directory deps
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/mwan3d
	$(GO) build -trimpath -o build/mwan3d-demo ./internal/demo
	./build/mwan3d-demo -binary $(BIN) $(DEMOFLAGS)

clean:
	rm -rf build

include packaging/Makefile.inc
