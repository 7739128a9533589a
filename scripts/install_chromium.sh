#!/usr/bin/env bash
# Installs a headless-capable Chromium from Debian's `chromium` package (once; a second run only
# checks) and prints its path on stdout. The HTML report tests render pages in it. Set
# KAFKASCOPE_CHROMIUM to use another Chromium binary instead.
set -euo pipefail
say() { printf '[chromium] %s\n' "$*" >&2; }

if [ -n "${KAFKASCOPE_CHROMIUM:-}" ] && [ -x "${KAFKASCOPE_CHROMIUM}" ]; then
  say "using KAFKASCOPE_CHROMIUM=${KAFKASCOPE_CHROMIUM}"
  echo "${KAFKASCOPE_CHROMIUM}"
  exit 0
fi
if command -v chromium >/dev/null 2>&1; then
  say "installed: $(chromium --version 2>/dev/null | head -1)"
  command -v chromium
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  say "missing tool: apt-get (install Chromium yourself and set KAFKASCOPE_CHROMIUM)"
  exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { say "missing tool: sudo (apt-get needs root)"; exit 1; }
  sudo="sudo"
fi
say "installing Debian's chromium package"
export DEBIAN_FRONTEND=noninteractive
# Another apt run (setup of a sibling checkout) may hold the lock: wait for it, boundedly.
$sudo apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
$sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends chromium >&2
command -v chromium >/dev/null 2>&1 || { say "chromium missing after install"; exit 1; }
say "installed: $(chromium --version 2>/dev/null | head -1)"
command -v chromium
