#!/usr/bin/env bash
# Builds the kafkascope dev collector (otelcol-kafkascope) with the OpenTelemetry Collector
# Builder (ocb), from the Go module proxy only, idempotently and cached:
#   ${KAFKASCOPE_CACHE:-$HOME/.cache/kafkascope}/otelcol/<version>-<hash>/otelcol-kafkascope
# (<hash>: the first 12 hex digits of the manifest's and local components' sha256)
# The manifest is devstack/builds/otelcol/builder-config.yaml; its dist.version is the builder's and
# the components' version. GOPATH, GOMODCACHE and GOCACHE live under the cache too, so a rebuild
# after a manifest change is quick and a rerun with an unchanged manifest returns at once.
# Progress goes to stderr as "[collector] ..." lines; the binary's path is printed on stdout.
# Environment: KAFKASCOPE_CACHE, KAFKASCOPE_NICE (niceness of the build, default 15),
# OTELCOL_BUILDER_CONFIG (another manifest), GOPROXY/GOSUMDB as usual.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { printf '[collector] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

manifest="${OTELCOL_BUILDER_CONFIG:-$here/devstack/builds/otelcol/builder-config.yaml}"
[ -f "$manifest" ] || die "builder manifest not found: $manifest"
cache="${KAFKASCOPE_CACHE:-$HOME/.cache/kafkascope}"
name="otelcol-kafkascope"

# dist.version, e.g. "0.155.0" -> components v0.155.0, providers v1.61.0, builder v0.155.0
version="$(sed -n 's/^[[:space:]]*version:[[:space:]]*["'\'']\{0,1\}\([0-9][0-9.]*\).*/\1/p' "$manifest" | head -n1)"
[[ "$version" =~ ^0\.([0-9]+)\.0$ ]] || die "dist.version in $manifest must look like 0.N.0, got '${version}'"
minor="${BASH_REMATCH[1]}"
stable="1.$((minor - 94)).0"

command -v sha256sum >/dev/null 2>&1 || die "missing tool: sha256sum (coreutils)"
# Components built from this repository ("path:" entries, relative to the manifest's folder)
# are part of what is built: their sources count in the stamp like the manifest does.
manifest_dir="$(cd "$(dirname "$manifest")" && pwd)"
local_paths=()
while read -r rel; do
  [ -d "$manifest_dir/$rel" ] || die "path: $rel in $manifest is not a folder beside the manifest"
  local_paths+=("$manifest_dir/$rel")
done < <(sed -n 's/^[[:space:]]*path:[[:space:]]*\.\/\([^[:space:]#]*\).*/\1/p' "$manifest")
want="$( { sha256sum "$manifest" | cut -d' ' -f1
           if [ "${#local_paths[@]}" -gt 0 ]; then
             find "${local_paths[@]}" -type f | LC_ALL=C sort | xargs sha256sum | sed "s|$manifest_dir/||"
           fi; } | sha256sum | cut -d' ' -f1)"
# One folder per manifest (and local sources): worktrees or branches with different manifests
# share the Go caches but never overwrite each other's binary.
dir="$cache/otelcol/$version-${want:0:12}"
bin="$dir/$name"
stamp="$dir/.manifest.sha256"

cached() { [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; }
if cached; then
  say "cached at $bin"
  printf '%s\n' "$bin"
  exit 0
fi

# Every component must be v0.N.0 and every confmap provider v1.(N-94).0 (collector release rule).
while read -r mod ver; do
  case "$mod" in
    go.opentelemetry.io/collector/confmap/*) exp="v$stable" ;;
    *) exp="v$version" ;;
  esac
  [ "$ver" = "$exp" ] || die "$mod is $ver in $manifest; the aligned set for builder v$version needs $exp"
done < <(sed -n 's/^[[:space:]]*-[[:space:]]*gomod:[[:space:]]*\([^[:space:]]*\)[[:space:]]*\([^[:space:]#]*\).*/\1 \2/p' "$manifest")

# shellcheck source=scripts/_go_build.sh
source "$here/scripts/_go_build.sh"
need_go "the collector"
build_lock "$dir" "$bin" cached
start=$SECONDS

tools="$cache/go/tools/builder-v$version"
builder="$tools/builder"
if [ ! -x "$builder" ]; then
  say "installing the collector builder go.opentelemetry.io/collector/cmd/builder@v$version"
  GOBIN="$tools" "${nice_cmd[@]}" "$GO" install -trimpath -ldflags='-s -w' \
    "go.opentelemetry.io/collector/cmd/builder@v$version" 2>&1 | sed 's/^/[collector]   /' >&2 \
    || die "go install of the builder failed (is v$version on the Go module proxy? check: go list -m -versions go.opentelemetry.io/collector/cmd/builder)"
fi

work="$dir/build"
rm -rf "$work" "$dir/tmp"
mkdir -p "$work" "$dir/tmp"
export TMPDIR="$dir/tmp"  # the builder leaves empty otelcol-distribution* dirs in the temp dir
sed -e "s|^\([[:space:]]*output_path:\).*|\1 $work|" \
    -e "s|^\([[:space:]]*path:[[:space:]]*\)\./|\1$manifest_dir/|" "$manifest" > "$dir/builder-config.yaml"
log="$dir/build.log"
: > "$log"
run_builder() {  # run the builder with the given extra flags, log to $log, progress to stderr
  "${nice_cmd[@]}" "$builder" --config="$dir/builder-config.yaml" "$@" 2>&1 \
    | tee -a "$log" | sed -u 's/^/[collector]   /' >&2
}
say "building $name $version with $("$GO" version | cut -d' ' -f3) (log: $log; the first build downloads ~3 GB of modules and compiles for a few minutes)"
if ! run_builder --skip-strict-versioning=false; then
  # The builder runs plain "go mod tidy", which also loads the tests of every dependency. A module
  # imported only by such a test (fileexporter v0.155.0's tests import otlpencodingextension
  # v0.155.0, which the proxy does not serve) makes it fail although the binary does not need it.
  grep -q 'failed to update go.mod' "$log" && [ -f "$work/go.mod" ] || die "the builder failed; see $log"
  say "go mod tidy failed (see above); retrying with 'go mod tidy -e', which skips modules only tests of dependencies import"
  (cd "$work" && "${nice_cmd[@]}" "$GO" mod tidy -e -compat=1.25 2>&1 | sed '/^go: downloading/d' \
    | tee -a "$log" | sed 's/^/[collector]   /' >&2) || die "go mod tidy -e failed; see $log"
  # The builder's strict version check, done by hand: core and components resolve to what we asked.
  while read -r mod ver; do
    got="$(cd "$work" && "$GO" list -m -f '{{.Version}}' "$mod" 2>>"$log")" || die "$mod is not in the resolved module graph; see $log"
    [ "$got" = "$ver" ] || die "$mod resolved to $got, not $ver: the manifest's versions are not one aligned set"
  done < <(printf 'go.opentelemetry.io/collector/otelcol v%s\n' "$version"
           sed -n 's/^[[:space:]]*-[[:space:]]*gomod:[[:space:]]*\([^[:space:]]*\)[[:space:]]*\([^[:space:]#]*\).*/\1 \2/p' "$manifest")
  say "module versions check out (otelcol v$version, providers v$stable); compiling"
  run_builder --skip-generate --skip-get-modules || die "compiling failed; see $log"
fi
[ -x "$work/$name" ] || die "the builder finished but $work/$name is missing; see $log"
mv -f "$work/$name" "$bin.tmp"
mv -f "$bin.tmp" "$bin"
printf '%s\n' "$want" > "$stamp"
rm -rf "$work" "$dir/tmp"
say "built $name $version in $((SECONDS - start))s ($(du -h "$bin" | cut -f1)); cached at $bin"
printf '%s\n' "$bin"
