#!/usr/bin/env bash
# Runs the whole test suite: unit tests, store tests on SQLite and Postgres,
# and the end-to-end tests that drive the real binary with kubectl.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
./scripts/build-examples.sh

export WASMPOD_TEST_POSTGRES_URL="${WASMPOD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
if ! pg_isready -q -d "$WASMPOD_TEST_POSTGRES_URL" 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 1 30); do pg_isready -q -d "$WASMPOD_TEST_POSTGRES_URL" && break; sleep 1; done
  fi
fi
if ! pg_isready -q -d "$WASMPOD_TEST_POSTGRES_URL"; then
  echo "error: Postgres is not reachable at $WASMPOD_TEST_POSTGRES_URL; the store tests need it" >&2
  exit 1
fi
if ! command -v kubectl >/dev/null; then
  echo "error: kubectl is not installed; the end-to-end tests drive the API with it" >&2
  exit 1
fi

cargo test --workspace --all-targets "$@"
