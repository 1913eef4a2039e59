#!/usr/bin/env bash
# The Debian packages the test suite uses, installed when missing: Chromium (browser
# tests) and PostgreSQL's server binaries (the tests start a throwaway cluster of their
# own in a temporary directory; see tests/postgres_cluster.py). Nothing is configured or
# started here, and no system file is edited.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${need[@]}" >/dev/null
fi
