#!/usr/bin/env bash
# Installs the Debian packages listed in the given files (one a line, `#` comments) that are not
# installed yet; does nothing when all are there. Never starts a service: a policy-rc.d that exits
# 101 is put in place for the install when none exists, and only the one it created is removed.
# Usage: scripts/install-deps.sh scripts/test-deps.txt [more lists...]   (as root when anything is missing)
set -euo pipefail

# Where invoke-rc.d looks; another path only for spec/integration/install-deps.spec.ts.
POLICY_RC_D=${TDC_POLICY_RC_D:-/usr/sbin/policy-rc.d}

if [ "$#" -eq 0 ]; then
  echo "usage: $0 LIST-FILE..." >&2
  exit 2
fi

wanted=()
for list in "$@"; do
  [ -r "$list" ] || { echo "install-deps: cannot read $list" >&2; exit 2; }
  while IFS= read -r line || [ -n "$line" ]; do
    line="${line%%#*}"
    for pkg in $line; do wanted+=("$pkg"); done
  done < "$list"
done

missing=()
for pkg in "${wanted[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$pkg")
done

lists="$*"
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: the Debian packages of ${lists} are installed"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: missing Debian packages ${missing[*]}, and this machine has no apt-get (the specs need Debian 12 or alike)" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing Debian packages: ${missing[*]}" >&2
  echo "install-deps: run this as root (e.g. sudo npm test), or install them first:" >&2
  echo "  sudo apt-get install --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]} (apt-get, no recommends; no service is started)"
created_policy=0
cleanup() {
  if [ "$created_policy" = 1 ]; then rm -f "$POLICY_RC_D"; fi
}
trap cleanup EXIT
if [ ! -e "$POLICY_RC_D" ]; then
  # Never start the system Postfix: the specs and the bench run their own instances on loopback.
  printf '#!/bin/sh\n# created by tdc-milter scripts/install-deps.sh for one install\nexit 101\n' > "$POLICY_RC_D"
  chmod 0755 "$POLICY_RC_D"
  created_policy=1
fi
export DEBIAN_FRONTEND=noninteractive
# Postfix asks what kind of mail system this is; the answer "No configuration" writes no main.cf.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt_opts=(-o DPkg::Lock::Timeout=900 -q)
# An install from the existing package lists first; refresh them only when that fails (fresh images have none).
if ! apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}"; then
  echo "install-deps: refreshing the package lists (apt-get update) and trying again"
  apt-get "${apt_opts[@]}" update
  apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}"
fi
echo "install-deps: installed ${missing[*]}"
