#!/usr/bin/env bash
# Set up a fresh Debian 12 machine for pinit: Debian's python3.11 venv in .venv with the pinned
# Python dependencies, then `invoke toolchain` (host packages with apt when root, the arm64
# sysroot, kernel and firmware into ~/.cache/pinit without root). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

py=/usr/bin/python3.11
# What setup itself needs before the venv exists: Debian's python3.11 with venv, and the CA
# bundle pip verifies the index with (a minimal Debian has neither).
need=()
"$py" -c 'import ensurepip, venv' 2>/dev/null || need+=(python3.11-venv)
[ -f /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "pinit: installing ${need[*]} with apt" >&2
        DEBIAN_FRONTEND=noninteractive apt-get -q update >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends "${need[@]}" >/dev/null
    else
        echo "pinit: missing ${need[*]}; run as root: apt-get install --no-install-recommends ${need[*]}" >&2
        exit 1
    fi
fi
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; assert sys.version_info[:3] == (3, 11, 2)' 2>/dev/null; then
    rm -rf .venv
    "$py" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
.venv/bin/invoke toolchain
