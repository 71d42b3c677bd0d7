#!/usr/bin/env bash
# Set up the development environment: a virtualenv in .venv with Livebase installed in
# editable mode together with its test extras.  Safe to run any number of times: when
# pyproject.toml has not changed since the last successful install, nothing is reinstalled.
# Run as root, it also installs libsrt (Debian's libsrt1.5-gnutls) for SRT ingest and push.
#
#   scripts/setup.sh           set up what the demo and the service need
#   scripts/setup.sh --test    also make sure ffprobe and chromium are available (the test
#                              suite needs them)
#
# Environment: PYTHON=/path/to/python3.x picks the interpreter used to create .venv
# (it must be Python 3.11 or newer; otherwise the newest python3.x on PATH is used).
set -euo pipefail

ROOT="$(cd -P "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="$ROOT/.venv"
VENV_PY="$VENV/bin/python"
STAMP="$VENV/.livebase-setup-stamp"
MIN_PY="3.11"
APT_STAMP="${TMPDIR:-/tmp}/livebase-apt-updated"

want_test=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    -h | --help)
      sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "setup.sh: unknown argument: $arg (expected --test)" >&2
      exit 2
      ;;
  esac
done

step() { printf '==> %s\n' "$*"; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die() {
  printf 'ERROR: %s\n' "$*" >&2
  exit 1
}
is_root() { [ "$(id -u)" -eq 0 ]; }

# shellcheck source=scripts/lib/apt.sh
source "$ROOT/scripts/lib/apt.sh"

py_ok() { # python executable -> success when it runs and is new enough
  "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1
}

pick_python() {
  if [ -n "${PYTHON:-}" ]; then
    py_ok "$PYTHON" || die "PYTHON=$PYTHON is not a working Python $MIN_PY or newer"
    printf '%s\n' "$PYTHON"
    return
  fi
  local cand
  for cand in python3 python3.14 python3.13 python3.12 python3.11; do
    if command -v "$cand" >/dev/null 2>&1 && py_ok "$cand"; then
      command -v "$cand"
      return
    fi
  done
  local found
  found="$(python3 --version 2>&1 || echo 'no python3 on PATH')"
  die "Python $MIN_PY or newer is required (found: $found).
       Install it (e.g. 'apt-get install python3' on Debian 12+/Ubuntu 24.04+),
       or point PYTHON at one: PYTHON=/usr/bin/python3.11 scripts/setup.sh"
}

create_venv() {
  local py="$1" log
  log="$(mktemp)"
  step "creating virtualenv .venv with $("$py" --version 2>&1) ($py)"
  if "$py" -m venv "$VENV" >"$log" 2>&1; then
    rm -f "$log"
    return 0
  fi
  rm -rf "$VENV"
  local ver pkgs
  ver="$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  pkgs="python3-venv python${ver}-venv"
  if is_root && command -v apt-get >/dev/null 2>&1; then
    step "'$py -m venv' failed; installing the venv module from Debian packages"
    apt_install "python${ver}-venv" || apt_install python3-venv ||
      die "could not install $pkgs"
    if ! "$py" -m venv "$VENV" >"$log" 2>&1; then
      cat "$log" >&2
      rm -rf "$VENV" "$log"
      die "'$py -m venv' still fails after installing $pkgs"
    fi
    rm -f "$log"
  else
    cat "$log" >&2
    rm -f "$log"
    die "'$py -m venv' failed: the Python venv module is missing.
       Install it and run this script again, e.g. on Debian/Ubuntu:
         sudo apt-get install python${ver}-venv     (or: python3-venv)"
  fi
}

# pip with its output in .venv/pip.log; the log's end is shown when it fails.
pip_quiet() {
  local log="$VENV/pip.log" rc=0
  PIP_ROOT_USER_ACTION=ignore "$VENV_PY" -m pip --disable-pip-version-check --no-input "$@" \
    >"$log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    grep -v "^WARNING: Location '.*' is ignored" "$log" | tail -n 40 >&2
    die "pip $* failed (exit $rc); full output in .venv/pip.log"
  fi
}

# Serialise concurrent runs on the same checkout (two terminals, editor integrations...).
if command -v flock >/dev/null 2>&1; then
  lock="${TMPDIR:-/tmp}/livebase-setup-$(id -u)-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1).lock"
  if (: >>"$lock") 2>/dev/null; then
    exec 9>>"$lock"
    flock 9
  fi
fi

# 1. The virtualenv.
if [ -x "$VENV_PY" ] && py_ok "$VENV_PY"; then
  :
else
  if [ -e "$VENV" ]; then
    warn ".venv exists but its Python is missing, broken or older than $MIN_PY; recreating it"
    rm -rf "$VENV"
  fi
  py="$(pick_python)"
  create_venv "$py"
  step "upgrading pip"
  pip_quiet install --upgrade pip
fi

# 2. The project and its test extras, unless already installed from this pyproject.toml.
wanted="$(
  sha256sum pyproject.toml | cut -d' ' -f1
  "$VENV_PY" -c 'import sys; print(sys.version)'
)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$wanted" ] && [ -x "$VENV/bin/livebase" ] &&
  (cd / && "$VENV_PY" -c 'import livebase' >/dev/null 2>&1); then
  step "Python packages up to date (pyproject.toml unchanged since the last install)"
else
  step "installing Python packages (pip install -e '.[test]'; this can take a few minutes)"
  rm -f "$STAMP"
  start=$SECONDS
  pip_quiet install -e '.[test]'
  printf '%s\n' "$wanted" >"$STAMP"
  step "Python packages installed ($((SECONDS - start)) s)"
fi

# 3. libsrt, which the service loads for SRT ingest and SRT push (ingest/srt/libsrt.py).
srt_loads() {
  (cd "$ROOT" && "$VENV_PY" -c 'from ingest.srt.libsrt import libsrt; libsrt()') >/dev/null 2>&1
}
if srt_loads; then
  step "libsrt found"
elif is_root && command -v apt-get >/dev/null 2>&1; then
  step "libsrt missing; installing Debian's libsrt1.5-gnutls"
  apt_install libsrt1.5-gnutls || apt_install libsrt1.5-openssl ||
    die "could not install libsrt1.5-gnutls (needed for SRT ingest and SRT push)"
  srt_loads || die "libsrt still cannot be loaded after installing it"
else
  warn "libsrt is not installed and this is not root, so it cannot be installed here.
         SRT ingest and SRT push will not start. Install it with:
           sudo apt-get install libsrt1.5-gnutls     (or: libsrt1.5-openssl)"
fi

# 4. ffprobe for the test suite (the demo only uses the ffmpeg bundled by imageio-ffmpeg).
if [ "$want_test" -eq 1 ]; then
  if command -v ffprobe >/dev/null 2>&1; then
    step "ffprobe found: $(command -v ffprobe)"
  elif is_root && command -v apt-get >/dev/null 2>&1; then
    step "ffprobe missing; installing Debian's ffmpeg package for it"
    apt_install ffmpeg || die "could not install ffmpeg (needed for ffprobe)"
    command -v ffprobe >/dev/null 2>&1 || die "ffprobe still missing after installing ffmpeg"
  else
    warn "ffprobe is not installed and this is not root, so it cannot be installed here.
         Tests that need ffprobe will fail. Install it with: sudo apt-get install ffmpeg"
  fi
fi

# 5. Chromium for the test suite: the daily report's HTML and the player pages run in a real
#    headless browser.
if [ "$want_test" -eq 1 ]; then
  if [ -x /usr/bin/chromium ]; then
    step "chromium found: /usr/bin/chromium"
  elif is_root && command -v apt-get >/dev/null 2>&1; then
    apt_install chromium fonts-noto-cjk ||
      die "could not install chromium (needed for the HTML report and player tests)"
  else
    warn "chromium is not installed and this is not root, so it cannot be installed here.
         The HTML report and player tests will be skipped. Install it with: sudo apt-get install chromium"
  fi
fi

step "setup done: $("$VENV_PY" --version 2>&1) in .venv"
