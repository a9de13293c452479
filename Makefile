# mwan3d — build, test and release targets. Run as root for the kernel tests.

GO        ?= go
PKGS      ?= ./...
BIN       := build/mwan3d
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
FUZZTIME  ?= 10s
BENCHTIME ?= 1s
# Debian packages the kernel tests and the demo call (nft for dumps, conntrack, ip;
# iptables and ipset to plant legacy mwan3 leftovers for the migration sweep test).
DEB_DEPS  := nftables conntrack iproute2 iptables ipset

# name GOOS GOARCH extra-env, one per cross target.
CROSS := \
	linux-amd64:linux:amd64: \
	linux-arm64:linux:arm64: \
	linux-armv7:linux:arm:GOARM=7 \
	linux-mips:linux:mips:GOMIPS=softfloat \
	linux-mipsle:linux:mipsle:GOMIPS=softfloat

.PHONY: all build test vet fmt-check deps cross fuzz bench demo clean

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

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) $(PKGS)

demo:
	@echo "make demo: not built yet (the demo lands with the end-to-end issue)"

clean:
	rm -rf build

include packaging/Makefile.inc
