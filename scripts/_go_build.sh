# Sourced by build_collector.sh and build_jaeger.sh (not run on its own): the Go toolchain, its
# module and build caches under the kafkascope cache, and one build at a time per binary.
# The sourcing script defines say and die and sets $cache before sourcing this.

GO="$(command -v go || true)"
if [ -z "$GO" ] && [ -x "${GOROOT:-/usr/local/go}/bin/go" ]; then GO="${GOROOT:-/usr/local/go}/bin/go"; fi
export GOPATH="$cache/go"
export GOMODCACHE="$cache/go/pkg/mod"
export GOCACHE="$cache/go/build-cache"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
export CGO_ENABLED=0
nice_cmd=(nice -n "${KAFKASCOPE_NICE:-15}")

# need_go WHAT: stop with a clear message when there is no Go toolchain to build WHAT.
need_go() {
  [ -n "$GO" ] || die "missing tool: go (the Go toolchain, 1.25 or newer, is needed to build $1; install it and put it on PATH)"
  PATH="$(dirname "$GO"):$PATH"
  export PATH
}

# build_lock DIR BIN CACHED: hold DIR/.lock for the rest of the script (parallel test sessions
# share the cache); if another build held it, and the command CACHED now succeeds, print BIN and
# exit.
build_lock() {
  mkdir -p "$1"
  command -v flock >/dev/null 2>&1 || return 0
  exec 9>"$1/.lock"
  if ! flock -n 9; then
    say "another build is running in $1; waiting for it"
    flock 9
  fi
  if "$3"; then
    say "cached at $2"
    printf '%s\n' "$2"
    exit 0
  fi
}
