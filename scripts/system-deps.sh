#!/usr/bin/env bash
# Install and start what the test suite needs from Debian on a fresh Debian 12 machine:
# Chromium (browser tests) and a PostgreSQL server reachable at DSPEX_TEST_POSTGRES_URL.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
pg_answers() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
if ! pg_answers && ! command -v pg_ctlcluster >/dev/null 2>&1; then
  need+=(postgresql)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! pg_answers; then
  echo "starting PostgreSQL"
  version=$(ls /etc/postgresql | sort -V | tail -1)
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 1 30); do pg_answers && break; sleep 1; done
  # Trust auth on loopback and a `test` database, as on the project's machines.
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  if ! grep -q "^host all all 127.0.0.1/32 trust" "$hba"; then
    $SUDO sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  fi
  $SUDO -u postgres psql -qtc "SELECT 1 FROM pg_roles WHERE rolname='root'" | grep -q 1 \
    || $SUDO -u postgres createuser -s root
  $SUDO -u postgres psql -qtc "SELECT 1 FROM pg_database WHERE datname='test'" | grep -q 1 \
    || $SUDO -u postgres createdb test
fi
