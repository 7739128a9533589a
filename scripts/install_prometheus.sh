#!/usr/bin/env bash
# Installs Prometheus and promtool from Debian's `prometheus` package (once; a second run only
# checks). The package's own service may start on :9090; kafkascope never uses it: tests and the
# demo run their own Prometheus on free 127.0.0.1 ports.
set -euo pipefail
say() { printf '[prometheus] %s\n' "$*" >&2; }

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
  say "installed: $(prometheus --version 2>&1 | head -1)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  say "missing tool: apt-get (install Prometheus 2.x and promtool yourself and put them on PATH)"
  exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { say "missing tool: sudo (apt-get needs root)"; exit 1; }
  sudo="sudo"
fi
say "installing Debian's prometheus package (prometheus + promtool)"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >&2
$sudo apt-get install -y -qq --no-install-recommends prometheus >&2
command -v promtool >/dev/null 2>&1 || { say "promtool missing after install"; exit 1; }
say "installed: $(prometheus --version 2>&1 | head -1)"
