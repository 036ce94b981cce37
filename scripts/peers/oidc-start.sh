#!/usr/bin/env bash
# Starts a real OpenID Provider on 127.0.0.1 for the federation tests: npm oidc-provider (panva,
# certified) run by oidc/op.mjs, whose only test-specific part is a headless login/consent
# interaction (the account is the request's login_hint; login_hint=__deny__ answers
# access_denied; a local part starting "unverified" gets email_verified=false).
# Prints CIAM_TEST_OIDC_ISSUER=http://127.0.0.1:<port> and the test clients, also written to
# $PEERS_RUN/oidc/env. Env: OP_PORT (default 0 = ephemeral), OP_REDIRECT_PATHS, OP_CLIENTS_JSON.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
run="$PEERS_RUN/oidc"; mkdir -p "$run"
if [ ! -d "$PEERS_HERE/oidc/node_modules/oidc-provider" ]; then
  command -v npm >/dev/null || { echo "oidc-start: node and npm are needed (Debian: nodejs npm)" >&2; exit 1; }
  (cd "$PEERS_HERE/oidc" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
stop_pidfile "$run/pid"
rm -f "$run/ready"
OP_READY_FILE="$run/ready" OP_PORT="${OP_PORT:-0}" \
  nohup node "$PEERS_HERE/oidc/op.mjs" >"$run/log" 2>&1 &
pid=$!; echo "$pid" >"$run/pid"
# Generous: its first start on a cold machine (module loading, RSA key generation) under a
# parallel build has been seen to take over 30 s.
if ! wait_for 120 test -s "$run/ready" || ! alive "$pid"; then
  echo "oidc-provider did not start:" >&2; cat "$run/log" >&2; exit 1
fi
. "$run/ready"
curl -fsS --max-time 5 "$ISSUER/.well-known/openid-configuration" >/dev/null
cat <<EOV | tee "$run/env"
CIAM_TEST_OIDC_ISSUER=$ISSUER
CIAM_TEST_OIDC_CLIENT_ID=ciam-test
CIAM_TEST_OIDC_CLIENT_SECRET=ciam-test-secret
CIAM_TEST_OIDC_POST_CLIENT_ID=ciam-test-post
CIAM_TEST_OIDC_POST_CLIENT_SECRET=ciam-test-post-secret
CIAM_TEST_OIDC_PUBLIC_CLIENT_ID=ciam-public
CIAM_TEST_OIDC_OP_SCRIPT=$PEERS_HERE/oidc/op.mjs
EOV
