#!/usr/bin/env bash
# Downloads the runtime jars of the Apache Kafka broker from Maven Central into
#   ${KAFKASCOPE_CACHE:-$HOME/.cache/kafkascope}/kafka/<kafka-version>/libs
# as listed by devstack/builds/kafka-pom.xml (which pins the Kafka and Log4j versions).
# Idempotent: a stamp file holding the POM's checksum marks a complete download, so a second
# run returns at once. Progress goes to stderr, prefixed "[kafka]"; the libs directory is
# printed on stdout.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pom="$here/devstack/builds/kafka-pom.xml"
say() { printf '[kafka] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "missing tool: $1 ($2)"; }

[ -f "$pom" ] || die "missing $pom"
# The first <kafka.version> / <log4j.version> element of the POM (the <properties> entries).
prop() { sed -n "s:.*<$1>\([^<]*\)</$1>.*:\1:p" "$pom" | head -n1; }
version="$(prop kafka.version)"
log4j_version="$(prop log4j.version)"
slf4j_version="$(prop slf4j.version)"
[ -n "$version" ] && [ -n "$log4j_version" ] && [ -n "$slf4j_version" ] \
  || die "could not read kafka.version / log4j.version / slf4j.version from $pom"

cache="${KAFKASCOPE_CACHE:-$HOME/.cache/kafkascope}"
root="$cache/kafka/$version"
libs="$root/libs"
stamp="$root/.fetched"
want="$(sha256sum "$pom" | cut -d' ' -f1)"

need java "a Java 17+ runtime, e.g. apt-get install openjdk-17-jre-headless"
if [ -d "$libs" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  say "jars cached at $libs"
  printf '%s\n' "$libs"
  exit 0
fi

need mvn "Apache Maven, e.g. apt-get install maven"

say "fetching Apache Kafka $version runtime jars (log4j $log4j_version) from Maven Central"
mkdir -p "$root"
tmp="$(mktemp -d "$root/libs.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS
# Debian's Maven 3.8.7 prints bare ESC[0m resets even in batch mode; strip them.
mvn -B -q -f "$pom" \
  org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1 | sed 's/\x1b\[0m//g' >&2 \
  || die "mvn copy-dependencies failed for Kafka $version (see the Maven output above)"

# The broker, the storage formatter, and the slf4j-1.7 -> log4j2 binding without which the
# broker's logs go nowhere.
for jar in "kafka_2.13-$version.jar" "kafka-server-$version.jar" "kafka-clients-$version.jar" \
           "log4j-core-$log4j_version.jar" "log4j-slf4j-impl-$log4j_version.jar" \
           "slf4j-api-$slf4j_version.jar"; do
  [ -f "$tmp/$jar" ] || die "expected $jar among the downloaded jars, not found in $tmp"
done
if ls "$tmp" | grep -q '^slf4j-api-2\.'; then
  die "slf4j-api 2.x was pulled in; the log4j-slf4j-impl binding needs slf4j 1.7"
fi

rm -rf "$libs"
mv "$tmp" "$libs"
trap - EXIT
printf '%s\n' "$want" > "$stamp"
say "fetched $(ls "$libs" | wc -l) jars ($(du -sh "$libs" | cut -f1)) in $((SECONDS - start))s into $libs"
printf '%s\n' "$libs"
