#!/usr/bin/env bash
# Installs Debian packages the tests need when their command is missing.
# Usage: hack/ensure-packages.sh COMMAND[=PACKAGE] …
set -euo pipefail
missing=()
for spec in "$@"; do
  cmd=${spec%%=*}; pkg=${spec#*=}
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "installing ${missing[*]} with apt-get"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
