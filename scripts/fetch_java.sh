#!/usr/bin/env bash
# The Java side of the interop tests (tests/interop), from Maven Central, cached:
#   ${KAFKASCOPE_CACHE:-$HOME/.cache/kafkascope}/java/<pom checksum>/
#     agent/opentelemetry-javaagent-<version>.jar   (loaded with -javaagent, never on a classpath)
#     libs/*.jar                                     (kafka-clients, opentelemetry-api, slf4j)
#     classes/<sources checksum>/*.class             (tests/interop/java/src compiled with javac)
# as pinned by tests/interop/java/pom.xml. Idempotent: a stamp holding the POM's checksum marks a
# complete download and one holding the sources' checksum a complete compile, so a second run
# returns at once. Progress goes to stderr, prefixed "[java]"; stdout gets three lines,
# agent=<jar>, libs=<dir>, classes=<dir>.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
java_dir="$here/tests/interop/java"
pom="$java_dir/pom.xml"
say() { printf '[java] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "missing tool: $1 ($2)"; }

[ -f "$pom" ] || die "missing $pom"
prop() { sed -n "s:.*<$1>\([^<]*\)</$1>.*:\1:p" "$pom" | head -n1; }
agent_version="$(prop otel.javaagent.version)"
clients_version="$(prop kafka.clients.version)"
[ -n "$agent_version" ] && [ -n "$clients_version" ] \
  || die "could not read otel.javaagent.version / kafka.clients.version from $pom"

cache="${KAFKASCOPE_CACHE:-$HOME/.cache/kafkascope}"
want="$(sha256sum "$pom" | cut -d' ' -f1)"
root="$cache/java/${want:0:16}"
agent="$root/agent/opentelemetry-javaagent-$agent_version.jar"
libs="$root/libs"
stamp="$root/.fetched"

need java "a Java 17+ runtime, e.g. apt-get install openjdk-17-jdk-headless"
need javac "a Java 17+ compiler, e.g. apt-get install openjdk-17-jdk-headless"

if [ -f "$agent" ] && [ -d "$libs" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  say "jars cached at $root"
else
  need mvn "Apache Maven, e.g. apt-get install maven"
  say "fetching the OpenTelemetry Java agent $agent_version and kafka-clients $clients_version from Maven Central"
  mkdir -p "$root"
  tmp="$(mktemp -d "$root/fetch.tmp.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  start=$SECONDS
  # Debian's Maven 3.8.7 prints bare ESC[0m resets even in batch mode; strip them.
  mvn -B -q -f "$pom" \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp/libs" 2>&1 | sed 's/\x1b\[0m//g' >&2 \
    || die "mvn copy-dependencies failed (see the Maven output above)"
  for jar in "opentelemetry-javaagent-$agent_version.jar" "kafka-clients-$clients_version.jar"; do
    [ -f "$tmp/libs/$jar" ] || die "expected $jar among the downloaded jars, not found"
  done
  mkdir -p "$tmp/agent"
  mv "$tmp/libs/opentelemetry-javaagent-$agent_version.jar" "$tmp/agent/"
  rm -rf "$root/agent" "$libs"
  mv "$tmp/agent" "$root/agent"
  mv "$tmp/libs" "$libs"
  rm -rf "$tmp"
  trap - EXIT
  printf '%s\n' "$want" > "$stamp"
  say "fetched $(ls "$libs" | wc -l) jars ($(du -sh "$libs" | cut -f1)) and the agent ($(du -sh "$agent" | cut -f1)) in $((SECONDS - start))s"
fi

sources=("$java_dir"/src/*.java)
src_sum="$(cat "${sources[@]}" | sha256sum | cut -d' ' -f1)"
classes="$root/classes/${src_sum:0:16}"
if [ "$(cat "$classes/.compiled" 2>/dev/null)" = "$src_sum" ]; then
  say "classes cached at $classes"
else
  say "compiling ${#sources[@]} Java sources with $(javac -version 2>&1)"
  mkdir -p "$root/classes"
  tmp="$(mktemp -d "$root/classes/build.tmp.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  javac -J-Xmx256m --release 17 -Xlint:all,-try -Werror -cp "$libs/*" -d "$tmp" "${sources[@]}" >&2 \
    || die "javac failed for ${sources[*]}"
  printf '%s\n' "$src_sum" > "$tmp/.compiled"
  rm -rf "$classes"
  mv "$tmp" "$classes"
  trap - EXIT
fi

printf 'agent=%s\nlibs=%s\nclasses=%s\n' "$agent" "$libs" "$classes"
