# Shared by scripts/setup.sh and scripts/services.sh (sourced, never run): Debian package
# installs that run `apt-get update` first unless it ran in the last hour, with apt's chatter
# kept out of the way. The caller defines step() and sets APT_STAMP.
# shellcheck shell=bash

apt_updated_here=0
# Run an apt-get command with its chatter sent to a log; show the log's end if it fails.
apt_quiet() {
  local log rc=0
  log="$(mktemp)"
  apt-get "$@" >"$log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    tail -n 30 "$log" >&2
    echo "apt-get $* failed (exit $rc)" >&2
  fi
  rm -f "$log"
  return "$rc"
}
apt_update() {
  step "apt-get update"
  apt_quiet update || return 1
  apt_updated_here=1
  touch "$APT_STAMP" 2>/dev/null || true
}
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "$(find "$APT_STAMP" -mmin -60 2>/dev/null)" ]; then
    apt_update || return 1
  fi
  step "apt-get install $*"
  local opts=(-y --no-install-recommends -o DPkg::Lock::Timeout=300)
  if ! apt_quiet install "${opts[@]}" "$@"; then
    [ "$apt_updated_here" -eq 0 ] || return 1
    apt_update || return 1
    apt_quiet install "${opts[@]}" "$@"
  fi
}
