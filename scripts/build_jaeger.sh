#!/usr/bin/env bash
# Builds Jaeger v2 (github.com/jaegertracing/jaeger/cmd/jaeger) from the Go module proxy only,
# idempotently and cached:
#   ${KAFKASCOPE_CACHE:-$HOME/.cache/kafkascope}/jaeger/<module version>/jaeger
# Jaeger's module path has no /v2 suffix, so its v2.x.y tags are not Go versions of it: each v2
# release is also tagged v1.(x+63).y, and that is the version the proxy serves (v1.76.0 = v2.13.0).
# v1.76.0 and older carry a replace directive, which "go install module@version" refuses, so the
# fallback builds a writable copy of the downloaded module source with "go build".
# Built from source, the binary has no UI assets (/ shows a placeholder); the HTTP API works.
# Progress goes to stderr as "[jaeger] ..." lines; the binary's path is printed on stdout.
# Environment: KAFKASCOPE_CACHE; JAEGER_VERSION (a Go version of the module, e.g. v1.76.0, or
# "latest" to ask the proxy); KAFKASCOPE_NICE (niceness of the build, default 15); GOPROXY.
set -euo pipefail
say() { printf '[jaeger] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

module="github.com/jaegertracing/jaeger"
# Newest version the Go module proxy serves that builds (checked with go list -m -versions).
default_version="v1.76.0"
cache="${KAFKASCOPE_CACHE:-$HOME/.cache/kafkascope}"
version="${JAEGER_VERSION:-$default_version}"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/_go_build.sh
source "$here/scripts/_go_build.sh"

if [ "$version" = "latest" ]; then
  need_go Jaeger
  version="$("$GO" list -m -f '{{.Version}}' "$module@latest")" || die "could not ask the Go module proxy for $module@latest"
  say "the proxy's latest $module is $version"
fi
[[ "$version" =~ ^v([0-9]+)\.([0-9]+)\.([0-9]+)$ ]] || die "JAEGER_VERSION must look like v1.N.P, got '$version'"
dir="$cache/jaeger/${version#v}"
bin="$dir/jaeger"
if [ -x "$bin" ]; then
  say "cached at $bin"
  printf '%s\n' "$bin"
  exit 0
fi

need_go Jaeger
cached() { [ -x "$bin" ]; }
build_lock "$dir" "$bin" cached

major="${BASH_REMATCH[1]}" minor="${BASH_REMATCH[2]}" patch="${BASH_REMATCH[3]}"
v2=""
if [ "$major" = 1 ] && [ "$minor" -ge 63 ]; then v2="v2.$((minor - 63)).$patch"; fi
ldflags="-s -w"
[ -n "$v2" ] && ldflags="$ldflags -X $module/internal/version.latestVersion=$v2"
log="$dir/build.log"
: > "$log"
start=$SECONDS

say "building $module/cmd/jaeger@$version${v2:+ (Jaeger $v2)} with $("$GO" version | cut -d' ' -f3) (log: $log; the first build takes several minutes on 2 cores)"
if GOBIN="$dir/bin" "${nice_cmd[@]}" "$GO" install -trimpath -ldflags="$ldflags" "$module/cmd/jaeger@$version" >>"$log" 2>&1; then
  mv -f "$dir/bin/jaeger" "$bin.tmp"
  rmdir "$dir/bin" 2>/dev/null || true
else
  if grep -q 'replace directives' "$log"; then
    say "go install refused $version (its go.mod has a replace directive); building a copy of the module source instead"
  else
    sed 's/^/[jaeger]   /' "$log" | tail -n 20 >&2
    say "go install failed; trying to build a copy of the module source instead"
  fi
  src_dir="$("$GO" mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir":[[:space:]]*"\(.*\)",\{0,1\}$/\1/p')" \
    || die "go mod download $module@$version failed (does the proxy serve it? check: go list -m -versions $module)"
  [ -d "$src_dir" ] || die "go mod download $module@$version gave no source directory"
  src="$dir/src"
  rm -rf "$src"
  cp -r "$src_dir" "$src"
  chmod -R u+w "$src"
  # The UI package embeds actual/*; the module zip keeps its .gitignore, but make sure.
  for ui in "$src"/cmd/query/app/ui/actual "$src"/cmd/jaeger/internal/extension/jaegerquery/internal/ui/actual; do
    if [ -d "$(dirname "$ui")" ] && [ -z "$(ls -A "$ui" 2>/dev/null)" ]; then mkdir -p "$ui" && touch "$ui/.gitignore"; fi
  done
  (cd "$src" && "${nice_cmd[@]}" "$GO" build -trimpath -ldflags="$ldflags" -o "$bin.tmp" ./cmd/jaeger) 2>&1 \
    | tee -a "$log" | sed -e '/^go: downloading/d' -e 's/^/[jaeger]   /' >&2 || true
  [ -x "$bin.tmp" ] || die "go build of $module@$version failed; see $log"
  rm -rf "$src"
fi
mv -f "$bin.tmp" "$bin"
say "built jaeger $version${v2:+ (Jaeger $v2)} in $((SECONDS - start))s ($(du -h "$bin" | cut -f1)); cached at $bin"
printf '%s\n' "$bin"
