#!/usr/bin/env bash
# generate.sh regenerates all code derived from proto/ (Go messages, gRPC
# stubs, grpc-gateway handlers, OpenAPI v2 specs). It works offline: the
# third-party protos come from the Go module cache (downloaded once with
# `go mod download`), never from the Buf Schema Registry, and every plugin is a
# local binary in .bin. Running it twice produces no diff.
#
# Usage: scripts/generate.sh [--deps-only]
#   --deps-only  only materialise the third-party protos into .cache/protodeps
#                (what `buf lint` / `buf build` need on a clean clone).
set -euo pipefail

DEPS_ONLY=0
case "${1:-}" in
  "") ;;
  --deps-only) DEPS_ONLY=1 ;;
  *) echo "usage: $0 [--deps-only]" >&2; exit 2 ;;
esac

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BIN="$ROOT/.bin"
DEPS="$ROOT/.cache/protodeps"
OPENAPI_TMP="$ROOT/.cache/openapi"
OPENAPI_OUT="$ROOT/proto/openapi"

# Pinned sources of third-party protos.
GOOGLEAPIS_MOD="github.com/grpc-ecosystem/grpc-gateway@v1.16.0"
PROTOVALIDATE_MOD="github.com/bufbuild/protovalidate@v1.2.2"

SERVICES=(auth mining billing sla analytics)

if [[ $DEPS_ONLY == 0 ]]; then
  for tool in buf protoc-gen-go protoc-gen-go-grpc protoc-gen-grpc-gateway protoc-gen-openapiv2; do
    if [[ ! -x "$BIN/$tool" ]]; then
      echo "generate: missing $BIN/$tool (run make tools)" >&2
      exit 1
    fi
  done
fi

# moddir prints the module-cache directory of a pinned module, downloading it
# into the cache only if it is not there yet.
moddir() {
  local dir
  dir="$(cd / && GOWORK=off GOFLAGS= go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
  if [[ -z "$dir" || ! -d "$dir" ]]; then
    echo "generate: cannot locate module $1 in the Go module cache" >&2
    exit 1
  fi
  printf '%s\n' "$dir"
}

# Materialise third-party protos (copied, so the tree is writable and stable).
rm -rf "$DEPS"
mkdir -p "$DEPS/google/api" "$DEPS/google/rpc" "$DEPS/buf/validate"
gw="$(moddir "$GOOGLEAPIS_MOD")"
for f in annotations http httpbody; do
  install -m 0644 "$gw/third_party/googleapis/google/api/$f.proto" "$DEPS/google/api/$f.proto"
done
for f in "$gw"/third_party/googleapis/google/rpc/*.proto; do
  install -m 0644 "$f" "$DEPS/google/rpc/$(basename "$f")"
done
pv="$(moddir "$PROTOVALIDATE_MOD")"
install -m 0644 "$pv/proto/protovalidate/buf/validate/validate.proto" "$DEPS/buf/validate/validate.proto"
if [[ $DEPS_ONLY == 1 ]]; then
  echo "generate: third-party protos in ${DEPS#"$ROOT"/}"
  exit 0
fi

# Remove previous outputs so deleted protos do not leave stale code behind.
find proto/hashinsight -type f \( -name '*.pb.go' -o -name '*.pb.gw.go' \) -delete
rm -rf "$OPENAPI_TMP"
mkdir -p "$OPENAPI_TMP" "$OPENAPI_OUT"
find "$OPENAPI_OUT" -maxdepth 1 -type f -name '*.swagger.json' -delete

"$BIN/buf" lint
PATH="$BIN:$PATH" "$BIN/buf" generate

# One OpenAPI document per service, flat names for embedding by the gateway.
for svc in "${SERVICES[@]}"; do
  src="$OPENAPI_TMP/hashinsight/$svc/v1/${svc}_service.swagger.json"
  if [[ -f "$src" ]]; then
    install -m 0644 "$src" "$OPENAPI_OUT/$svc.swagger.json"
  fi
done

gofmt -l proto | { ! grep . ; } || { echo "generate: generated code is not gofmt-clean" >&2; exit 1; }
echo "generate: ok"
