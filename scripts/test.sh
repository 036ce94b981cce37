#!/usr/bin/env bash
# Runs the whole test suite: starts the peers the tests talk to (real SMTP sinks, plain and
# STARTTLS-required; PostgreSQL and Redis if they are down), then runs
# every test of the workspace with cargo-nextest (or cargo test where nextest is missing),
# then the doctests. Stops the peers on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/peers/lib.sh

trap 'scripts/peers/smtp-stop.sh; scripts/peers/oidc-stop.sh' EXIT
scripts/peers/smtp-start.sh >/dev/null
# The OpenID Provider (npm oidc-provider on loopback) for the federation tests:
# CIAM_TEST_OIDC_ISSUER and the test clients.
scripts/peers/oidc-start.sh >/dev/null
set -a; . "$PEERS_RUN/oidc/env"; set +a
SMTP_TLS=1 scripts/peers/smtp-start.sh >/dev/null
set -a; . "$PEERS_RUN/smtp/env"; . "$PEERS_RUN/smtp-tls/env"; set +a
# PostgreSQL and Redis: the machine's own services (started if down). A URL already set in the
# environment wins, so the suite can run against other servers.
services="$(scripts/peers/services-up.sh)"
export CIAM_TEST_POSTGRES_URL="${CIAM_TEST_POSTGRES_URL:-$(echo "$services" | sed -n 's/^CIAM_TEST_POSTGRES_URL=//p')}"
export CIAM_TEST_REDIS_URL="${CIAM_TEST_REDIS_URL:-$(echo "$services" | sed -n 's/^CIAM_TEST_REDIS_URL=//p')}"

# The independent OpenAPI validator (a PyPI venv) for ciam-axum's OpenAPI tests.
export CIAM_TEST_OPENAPI_PYTHON="${CIAM_TEST_OPENAPI_PYTHON:-$(scripts/peers/openapi-install.sh | sed -n 's/^CIAM_TEST_OPENAPI_PYTHON=//p')}"

# Headless Chromium and playwright-core for the browser test (installed if missing).
scripts/peers/browser-install.sh >/dev/null

# Published conformance vectors, read by path (a checkout of the shared vectors beside this repo).
export CIAM_VECTORS_DIR="${CIAM_VECTORS_DIR:-$(cd .. && pwd)/shared/vectors}"

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-features --no-fail-fast "$@"
else
  cargo test --workspace --all-features --no-fail-fast "$@"
fi
# nextest does not run doctests.
cargo test --workspace --all-features --doc
