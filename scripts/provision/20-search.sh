#!/usr/bin/env bash
# Fetch the Elasticsearch and OpenSearch integ-test distributions from Maven Central and unpack them once.
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
