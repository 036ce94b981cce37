#!/usr/bin/env bash
# Fuzz ciam-webauthn's parsers with cargo-fuzz (libFuzzer):
#   attestation_object  registration verification on arbitrary attestationObject bytes
#   authenticator_data  the authenticator-data parser (and the COSE key it carries)
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 30)
#
# Installs cargo-fuzz if missing (cargo install --locked, from crates.io). Runs
# on the stable toolchain: libFuzzer's sanitizer flags are nightly-only, so
# RUSTC_BOOTSTRAP=1 lets stable rustc accept them. The seed corpus is made at
# run time from the WebAuthn vectors ($CIAM_VECTORS_DIR/webauthn, default
# ../shared/vectors from the repository root; never copied into the repo): every
# attestationObject and authenticatorData they hold, plus the authData inside
# each attestationObject. Corpus and crash artifacts stay under fuzz/ (ignored
# by git). Exits non-zero if a target finds a crash (the input is in
# fuzz/artifacts/<target>/).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
case "$seconds" in
  '' | *[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET]" >&2; exit 2 ;;
esac
vectors="${CIAM_VECTORS_DIR:-../shared/vectors}/webauthn"
targets=(attestation_object authenticator_data)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

echo "== seed corpus from $vectors"
for t in "${targets[@]}"; do mkdir -p "fuzz/corpus/$t"; done
python3 - "$vectors" fuzz/corpus <<'PY'
import base64, hashlib, json, os, sys

vectors, out = sys.argv[1], sys.argv[2]

def b64(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))

def cbor_auth_data(att):
    """The authData byte string of an attestationObject (a CBOR map)."""
    key = b"\x68authData"
    i = att.find(key)
    if i < 0:
        return None
    i += len(key)
    head = att[i]
    if head & 0xE0 != 0x40:
        return None
    info = head & 0x1F
    if info < 24:
        n, i = info, i + 1
    elif info == 24:
        n, i = att[i + 1], i + 2
    elif info == 25:
        n, i = int.from_bytes(att[i + 1:i + 3], "big"), i + 3
    else:
        return None
    return att[i:i + n]

seeds = {"attestation_object": set(), "authenticator_data": set()}

def walk(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(v, str) and k.startswith("attestationObject"):
                att = b64(v)
                seeds["attestation_object"].add(att)
                ad = cbor_auth_data(att)
                if ad:
                    seeds["authenticator_data"].add(ad)
            elif isinstance(v, str) and k.startswith("authenticatorData"):
                seeds["authenticator_data"].add(b64(v))
            else:
                walk(v)
    elif isinstance(node, list):
        for v in node:
            walk(v)

files = [f for f in sorted(os.listdir(vectors)) if f.endswith(".json")]
if not files:
    sys.exit(f"no vectors in {vectors} (set CIAM_VECTORS_DIR)")
for f in files:
    with open(os.path.join(vectors, f)) as fh:
        walk(json.load(fh))
for target, items in seeds.items():
    for data in items:
        name = hashlib.sha1(data).hexdigest()
        with open(os.path.join(out, target, name), "wb") as fh:
            fh.write(data)
    print(f"{target}: {len(items)} seeds")
PY

export RUSTC_BOOTSTRAP=1
echo "== build"
cargo fuzz build

status=0
for t in "${targets[@]}"; do
  echo "== fuzz $t for ${seconds}s"
  # -rss_limit_mb: 2 GB is plenty for these parsers; -max_len: 16 KB covers
  # every attestationObject in the vectors (the largest is 4.4 KB).
  if ! cargo fuzz run "$t" "fuzz/corpus/$t" -- \
      -max_total_time="$seconds" -max_len=16384 -rss_limit_mb=2048 -print_final_stats=1; then
    echo "!! $t: crash, see fuzz/artifacts/$t/" >&2
    status=1
  fi
done
exit "$status"
