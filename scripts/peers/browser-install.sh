#!/usr/bin/env bash
# Installs what the quickstart's browser test (examples/quickstart/tests/browser.rs) needs:
# Debian's Chromium at /usr/bin/chromium and npm playwright-core (pinned, no browser download)
# in examples/quickstart/tests/browser/node_modules. Idempotent: does nothing when both are there.
# `apt-get update` runs only when a plain install fails (a fresh machine has no package lists).
# Env: CHROMIUM (default /usr/bin/chromium): a browser already installed elsewhere.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
browser_dir="$REPO_ROOT/examples/quickstart/tests/browser"
chromium="${CHROMIUM:-/usr/bin/chromium}"
now() { date +%s%N | cut -b1-13; }

if [ ! -x "$chromium" ]; then
  t0=$(now)
  apt=(apt-get -o DPkg::Lock::Timeout=300 -y -q --no-install-recommends)
  if ! "${apt[@]}" install chromium >/dev/null 2>&1; then
    "${apt[@]}" update >/dev/null
    "${apt[@]}" install chromium >/dev/null
  fi
  echo "# apt-get install chromium: $(( $(now) - t0 )) ms" >&2
fi
[ -x "$chromium" ] || { echo "browser-install: $chromium is still missing" >&2; exit 1; }

# npm ci again when the installed playwright-core is not the version the lockfile pins.
want="$(sed -n 's/^ *"playwright-core": "\(.*\)"$/\1/p' "$browser_dir/package.json")"
have="$(sed -n 's/^ *"version": "\(.*\)",$/\1/p' "$browser_dir/node_modules/playwright-core/package.json" 2>/dev/null | head -1 || true)"
if [ "$have" != "$want" ]; then
  command -v npm >/dev/null || { echo "browser-install: npm (Node.js >= 20) is required" >&2; exit 1; }
  t0=$(now)
  (cd "$browser_dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "# npm ci (playwright-core): $(( $(now) - t0 )) ms" >&2
fi
echo "browser: $("$chromium" --version 2>/dev/null | head -1), playwright-core $want"
