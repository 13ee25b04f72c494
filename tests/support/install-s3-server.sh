#!/usr/bin/env bash
# Install the S3 test server (s3s-fs, a file-backed S3 server that checks
# SigV4 signatures, presigned URLs included) where the Rust test harness
# looks for it: $FANOUT_TOOLS/bin/s3s-fs, default /var/tmp/fanout-tools.
# Idempotent: does nothing when that version is already there.
#
# s3s-fs 0.14.1 is the newest release that builds on rustc 1.92+ (0.15 and
# later need 1.96); the build takes about two minutes on two cores.
set -euo pipefail

version=0.14.1
root="${FANOUT_TOOLS:-/var/tmp/fanout-tools}"
bin="$root/bin/s3s-fs"

if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -qx "s3s-fs $version"; then
  echo "s3s-fs $version is installed: $bin"
  exit 0
fi

echo "--- installing s3s-fs $version into $root (takes a few minutes)"
# cargo's own temporary build dir, not the project's target dir.
env -u CARGO_TARGET_DIR cargo install --quiet --locked --force \
  --root "$root" --version "$version" --features binary s3s-fs
"$bin" --version >/dev/null
echo "s3s-fs $version is installed: $bin"
