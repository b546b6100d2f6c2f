#!/usr/bin/env bash
# Fails when `go mod tidy` would change go.mod or go.sum of any given module.
set -euo pipefail
status=0
for dir in "$@"; do
  tmp=$(mktemp -d)
  cp "$dir/go.mod" "$dir/go.sum" "$tmp/"
  (cd "$dir" && GOFLAGS=-mod=mod go mod tidy)
  if ! diff -q "$tmp/go.mod" "$dir/go.mod" >/dev/null || ! diff -q "$tmp/go.sum" "$dir/go.sum" >/dev/null; then
    echo "go mod tidy changes $dir/go.mod or go.sum; run it and commit the result"
    status=1
  fi
  cp "$tmp/go.mod" "$tmp/go.sum" "$dir/"
  rm -rf "$tmp"
done
exit $status
