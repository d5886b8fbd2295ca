# HashInsight platform — every developer and CI entry point.
# `make help` lists the targets. Tool versions are pinned here and nowhere else.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

ROOT      := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
BIN       := $(ROOT)/.bin
export PATH := $(BIN):$(PATH)
export GOFLAGS ?= -buildvcs=false

BUF_VERSION                 := v1.75.0
PROTOC_GEN_GO_VERSION       := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION  := v1.6.1
GRPC_GATEWAY_VERSION        := v2.33.0
STATICCHECK_VERSION         := v0.8.2
GRPCURL_VERSION             := v1.9.4

MODULES := proto pkg gateway cmd services/auth services/mining services/billing services/sla services/analytics
PKGS    := $(addprefix ./,$(addsuffix /...,$(MODULES)))

# TEST_TIMEOUT bounds one package's tests; the whole run stays well under CI's budget.
TEST_TIMEOUT ?= 10m
TEST_FLAGS   ?= -race -count=1 -timeout $(TEST_TIMEOUT)

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: tools
tools: ## Install pinned Go tools into .bin/.
	@mkdir -p $(BIN)
	@install_tool() { local bin=$$1 pkg=$$2 ver=$$3 stamp="$(BIN)/.$$1.$$3"; \
	  if [[ ! -x "$(BIN)/$$bin" || ! -f "$$stamp" ]]; then \
	    echo "installing $$pkg@$$ver"; GOBIN=$(BIN) go install "$$pkg@$$ver"; rm -f $(BIN)/.$$bin.*; touch "$$stamp"; fi; }; \
	install_tool buf github.com/bufbuild/buf/cmd/buf $(BUF_VERSION); \
	install_tool protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go $(PROTOC_GEN_GO_VERSION); \
	install_tool protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc $(PROTOC_GEN_GO_GRPC_VERSION); \
	install_tool protoc-gen-grpc-gateway github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway $(GRPC_GATEWAY_VERSION); \
	install_tool protoc-gen-openapiv2 github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2 $(GRPC_GATEWAY_VERSION); \
	install_tool staticcheck honnef.co/go/tools/cmd/staticcheck $(STATICCHECK_VERSION); \
	install_tool grpcurl github.com/fullstorydev/grpcurl/cmd/grpcurl $(GRPCURL_VERSION)

.PHONY: deps
deps: ## Install Debian packages the tests and `make run` need (PostgreSQL server, Redis) when missing.
	@$(ROOT)/scripts/ensure-deps.sh

.PHONY: generate
generate: tools ## Regenerate protobuf/gRPC/gateway/OpenAPI code (offline).
	@$(ROOT)/scripts/generate.sh

.PHONY: build
build: ## Build every binary into .data/bin.
	@mkdir -p $(ROOT)/.data/bin
	@for s in auth mining billing sla analytics; do go build -o $(ROOT)/.data/bin/$$s ./services/$$s; done
	@go build -o $(ROOT)/.data/bin/gateway ./gateway
	@go build -o $(ROOT)/.data/bin/hictl ./cmd/hictl

.PHONY: lint
lint: tools ## go vet, staticcheck, gofmt and buf lint.
	@go vet $(PKGS)
	@staticcheck $(PKGS)
	@unformatted=$$(gofmt -l $(MODULES)); if [[ -n "$$unformatted" ]]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	@$(ROOT)/scripts/generate.sh --deps-only
	@buf lint

.PHONY: test
test: deps ## Run every test (unit + integration, -race) against a throwaway Postgres and Redis.
	@$(ROOT)/scripts/test.sh $(TEST_FLAGS) $(PKGS)

.PHONY: bench
bench: deps ## Run the Go benchmarks (see README for the load-test commands).
	@BENCH=1 $(ROOT)/scripts/test.sh -run '^$$' -bench . -benchmem $(PKGS)

.PHONY: run
run: deps ## Start the whole mesh locally (hictl dev up); Ctrl-C stops it.
	@mkdir -p $(ROOT)/.data/bin && go build -o $(ROOT)/.data/bin/hictl ./cmd/hictl
	@exec $(ROOT)/.data/bin/hictl dev up --data $(ROOT)/.data

.PHONY: tidy
tidy: ## Tidy every module and sync the workspace.
	@for m in $(MODULES); do (cd $$m && go mod tidy); done
	@go work sync

.PHONY: verify
verify: ## Fail when generate or tidy changes anything.
	@$(MAKE) generate
	@$(MAKE) tidy
	@git add -N . >/dev/null 2>&1 || true
	@if ! git diff --quiet -- . ':!.data'; then echo "make verify: generate/tidy changed files:"; git diff --stat -- . ':!.data'; exit 1; fi
	@echo "verify: no drift"
