#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite: lint, format check, type check, pytest.
# PostgreSQL and Redis are made reachable by scripts/services.sh (see there); arguments are
# passed on to pytest: scripts/test.sh -k settings -x
set -euo pipefail

ROOT="$(cd -P "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

step() { printf '\n==> %s\n' "$*"; }

step "setup"
bash scripts/setup.sh --test

step "services (PostgreSQL, Redis)"
# shellcheck source=scripts/services.sh
source scripts/services.sh

step "ruff check"
.venv/bin/ruff check .

step "ruff format --check"
.venv/bin/ruff format --check .

step "mypy"
.venv/bin/mypy

step "pytest"
rc=0
.venv/bin/pytest -q "$@" || rc=$?
if [ "$rc" -eq 5 ]; then
  echo "ERROR: pytest collected no tests (exit 5); treating that as a failure" >&2
fi
if [ "$rc" -ne 0 ]; then
  exit "$rc"
fi
step "all checks passed"
