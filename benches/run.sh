#!/usr/bin/env bash
# The performance harness in one command: every side-by-side figure of the performance issue,
# measured in one run on loopback, then the per-request criterion benches.
#
#   benches/run.sh            # the whole run (about 6 minutes of measurement after the build)
#   benches/run.sh --no-criterion
#
# Environment: HARNESS_SECONDS (length of one measurement, default 8), HARNESS_USERS (256),
# HARNESS_OUT (default target/harness; results.md is written there), CRITERION_SECONDS (3),
# HARNESS_ONLY=storm (phase 4 alone), HARNESS_CAPACITY=<hashes/s> (skip phase 1) and
# HARNESS_CALLGRIND=0 (skip the instruction counts).
# Installs wrk, libargon2-dev and valgrind from Debian if they are missing (needs root or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

criterion=1
for arg in "$@"; do
  case "$arg" in
    --no-criterion) criterion=0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

need=()
command -v wrk >/dev/null || need+=(wrk)
[ -e /usr/include/argon2.h ] || need+=(libargon2-dev)
command -v valgrind >/dev/null || need+=(valgrind)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 || {
    $sudo apt-get update -qq >/dev/null
    $sudo apt-get install -y -qq "${need[@]}" >/dev/null
  }
fi

target="${CARGO_TARGET_DIR:-target}"
out="${HARNESS_OUT:-$target/harness}"
mkdir -p "$out"
echo "== building (release)" >&2
cargo build --release -q -p quickstart -p ciam-benches --bin quickstart --bin harness --bin peer
gcc -O3 -o "$out/argon2_ref" benches/c/argon2_ref.c -largon2 -lpthread
rm -f "$out/quickstart" "$out/peer"
cp "$target/release/quickstart" "$target/release/peer" "$out/"

HARNESS_BIN_DIR="$out" HARNESS_OUT="$out" "$target/release/harness"

if [ "$criterion" = 1 ]; then
  secs="${CRITERION_SECONDS:-3}"
  echo "== 5. per-request costs (criterion, ${secs} s per benchmark)" >&2
  for bench in sessions webauthn tokens consent; do
    if [ -e "benches/benches/$bench.rs" ]; then
      cargo bench -q -p ciam-benches --bench "$bench" -- --measurement-time "$secs" --warm-up-time 1 2>&1 |
        grep -E '^[a-zA-Z0-9_/ :-]+$|time:' || true
    fi
  done
fi
