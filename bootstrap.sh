#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine. Idempotent: rerun it any time.
#
#   ./bootstrap.sh rebuild   set everything up, then destroy -> provision -> configure -> verify (local)
#   ./bootstrap.sh test      set everything up, then lint + unit tests + a real local rebuild/destroy
#   ./bootstrap.sh setup     only set up (apt packages, venv, LXD daemon, host image, Terraform)
#   ./bootstrap.sh TASK ...  set up, then `invoke TASK ...`
#   (add --frozen to install exactly the committed apt lock, or fail before creating anything)
#
# What "set up" installs is listed in docs/bootstrap.md.
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(lxd lxd-client nftables dnsmasq-base btrfs-progs debootstrap openssh-client python3-venv ca-certificates gzip tar
  aptly gnupg python3-apt redis-server wrk)
VENV=.venv
STAMP=$VENV/.requirements.sha256

log() { printf '[bootstrap] %s\n' "$*"; }
die() { printf '[bootstrap] ERROR: %s\n' "$1" >&2; [ -n "${2:-}" ] && printf '  -> %s\n' "$2" >&2; exit 1; }

check_platform() {
  [ "$(id -u)" = 0 ] || die "bootstrap needs root (apt, debootstrap, the LXD daemon)." "Run: sudo $0 ${*:-setup}"
  . /etc/os-release 2>/dev/null || die "cannot read /etc/os-release" "Use a Debian 12 machine."
  if [ "${ID:-}" != debian ] || [ "${VERSION_ID:-}" != 12 ]; then
    [ -n "${DML_ALLOW_UNSUPPORTED_OS:-}" ] || die "unsupported OS: ${PRETTY_NAME:-unknown}." \
      "This project is built and tested on Debian 12 (bookworm); set DML_ALLOW_UNSUPPORTED_OS=1 to try anyway."
  fi
  command -v python3 >/dev/null || die "python3 is missing" "apt-get install python3"
}

install_apt_packages() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # redis-server is here for its binary: the service's tests start their own on a free
    # loopback port. The package's own daemon is not wanted on the controller.
    if [[ " ${missing[*]} " == *" redis-server "* ]] && [ -d /run/systemd/system ]; then
      systemctl disable --now redis-server >/dev/null 2>&1 || true
      log "apt: redis-server's own daemon disabled (the tests start their own)"
    fi
  else
    log "apt: all packages present"
  fi
}

create_venv() {
  local want
  want=$(cat requirements.txt service/requirements.txt service/requirements-torch-cpu.txt 2>/dev/null | sha256sum | cut -d' ' -f1)
  if [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
    log "venv: $VENV up to date"
    return
  fi
  log "venv: installing hash-locked requirements into $VENV (a few minutes the first time)"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  # Every warning pip prints passes through (an index it cannot reach, a location that is
  # not there): a lock that only resolves on one machine must be visible.
  "$VENV/bin/python" -m pip install --quiet --require-hashes --no-deps -r requirements.txt
  # torch comes from PyTorch's own index (its CPU build is not on PyPI): its own lock.
  "$VENV/bin/python" -m pip install --quiet --require-hashes --no-deps -r service/requirements-torch-cpu.txt
  "$VENV/bin/python" -m pip check >/dev/null || die "pip check failed in $VENV" "Regenerate the lock with: invoke lock"
  echo "$want" > "$STAMP"
}

main() {
  local task=${1:-setup}
  # --frozen anywhere (e.g. ./bootstrap.sh rebuild --frozen): setup installs the committed
  # apt lock exactly too, or fails before anything is created.
  case " $* " in *" --frozen "*) export DML_FROZEN=1 ;; esac
  check_platform "$@"
  install_apt_packages
  create_venv
  "$VENV/bin/python" -m disposable.bootstrap
  [ "$task" = setup ] && exit 0
  exec "$VENV/bin/invoke" "$@"
}

main "$@"
