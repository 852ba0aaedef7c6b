#!/usr/bin/env bash
# Installs kustomize (the version below) into .venv/bin with `go install` through Go's configured module proxy.
# Idempotent: returns at once when that version is there. `make install` and the manifest tests call it.
set -euo pipefail
KUSTOMIZE_VERSION=v5.7.1
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="${KUSTOMIZE_BIN_DIR:-$ROOT/.venv/bin}"
if [[ -x "$BIN/kustomize" ]] && "$BIN/kustomize" version 2>/dev/null | grep -qx "$KUSTOMIZE_VERSION"; then
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "install-kustomize: the Go toolchain is needed (go install sigs.k8s.io/kustomize/kustomize/v5)" >&2
  exit 1
fi
mkdir -p "$BIN"
echo "installing kustomize $KUSTOMIZE_VERSION into $BIN" >&2
GOBIN="$BIN" GOFLAGS=-mod=mod go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
