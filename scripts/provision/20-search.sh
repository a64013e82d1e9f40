#!/usr/bin/env bash
# Fetch the Elasticsearch and OpenSearch (2 and 3) integ-test distributions from Maven Central and unpack them once,
# and choose the JDK OpenSearch 3 runs on (it needs Java 21+; the others run on the machine's JDK 17).
# Idempotent: a version already unpacked under the cache is left alone; downloads are checked against Maven's SHA-1.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck disable=SC1091
source "$here/../versions.env"
cache="${CIPULSE_CACHE_DIR:-${CACHE_DIR_DEFAULT:-$HOME/.cache/cipulse}}/search"
mkdir -p "$cache"
maven="${MAVEN_CENTRAL_URL:-https://repo1.maven.org/maven2}"

fetch_zip() {  # fetch_zip <maven group path> <artifact> <version> <unpacked dir name>
  local group_path="$1" artifact="$2" version="$3" name="$4"
  local target="$cache/$name-$version"
  if [ -x "$target/bin/$artifact" ]; then
    echo "$name $version: cached at $target"
    return
  fi
  local url="$maven/$group_path/$artifact/$version/$artifact-$version.zip"
  local zip="$cache/$artifact-$version.zip"
  if [ ! -s "$zip" ]; then
    echo "$name $version: downloading $url"
    curl -fsSL --retry 3 -o "$zip.part" "$url"
    mv "$zip.part" "$zip"
  fi
  local expected
  expected="$(curl -fsSL --retry 3 "$url.sha1" | cut -c1-40)"
  if [ "$(sha1sum "$zip" | cut -c1-40)" != "$expected" ]; then
    rm -f "$zip"
    echo "$name $version: checksum mismatch for $url" >&2
    exit 1
  fi
  local staging
  staging="$(mktemp -d "$cache/.unpack.XXXXXX")"
  unzip -q "$zip" -d "$staging"
  rm -rf "$target"
  mv "$staging/$artifact-$version" "$target"
  rmdir "$staging"
  rm -f "$zip"
  echo "$name $version: unpacked at $target"
}

fetch_zip org/elasticsearch/distribution/integ-test-zip elasticsearch "$ES_VERSION" elasticsearch
fetch_zip org/opensearch/distribution/integ-test-zip opensearch "$OPENSEARCH_VERSION" opensearch
fetch_zip org/opensearch/distribution/integ-test-zip opensearch "$OPENSEARCH3_VERSION" opensearch

java_feature() {  # java_feature <java home>: the feature release (17, 21, 25), or nothing if it does not run
  "$1/bin/java" -XshowSettings:properties -version 2>&1 \
    | awk -F'= ' '/java.specification.version/ {split($2, v, "."); print (v[1] == "1" ? v[2] : v[1])}'
}

usable_jdk() {  # usable_jdk <java home>: new enough, and a full JDK (OpenSearch's jvm.options adds the vector module)
  local feature
  feature="$(java_feature "$1")"
  [ -n "$feature" ] && [ "$feature" -ge "$OPENSEARCH3_JAVA_MIN" ] \
    && "$1/bin/java" --list-modules 2>/dev/null | grep -q '^jdk.incubator.vector@'
}

choose_opensearch3_jdk() {
  local candidate
  for candidate in "${CIPULSE_OPENSEARCH3_JAVA_HOME:-}" "$OPENSEARCH3_JAVA_HOME" /usr/lib/jvm/*; do
    if [ -n "$candidate" ] && [ -x "$candidate/bin/java" ] && usable_jdk "$candidate"; then
      echo "$candidate"
      return
    fi
  done
  echo "opensearch $OPENSEARCH3_VERSION needs a JDK $OPENSEARCH3_JAVA_MIN or newer (with jdk.incubator.vector);" \
    "none at \$CIPULSE_OPENSEARCH3_JAVA_HOME, $OPENSEARCH3_JAVA_HOME or /usr/lib/jvm/*" >&2
  exit 1
}

# The tests read the choice from here (tests/services/search.py).
jdk="$(choose_opensearch3_jdk)"
echo "$jdk" >"$cache/opensearch-$OPENSEARCH3_VERSION/cipulse-java-home"
echo "opensearch $OPENSEARCH3_VERSION: runs on $jdk (Java $(java_feature "$jdk"))"
