#!/usr/bin/env bash
# Installs PostgreSQL's server binaries (Debian's postgresql package) for the indexer's tests and
# the devnet's indexer, which start servers of their own from them (initdb + postgres on a free
# local port; crates/indexer/src/local_pg.rs). Idempotent: does nothing when the binaries are
# present (/usr/lib/postgresql/<version>/bin, or $PG_BIN). Debian's package starts no server of
# its own here (no systemd); none is needed.
set -euo pipefail
if [ -n "${PG_BIN:-}" ] && [ -x "$PG_BIN/initdb" ]; then
    exit 0
fi
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    exit 0
fi
echo "==> apt-get install postgresql"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
ls /usr/lib/postgresql/*/bin/initdb
