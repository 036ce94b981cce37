#!/usr/bin/env bash
# Stops the OpenID Provider started by oidc-start.sh (by its pid file).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
stop_pidfile "$PEERS_RUN/oidc/pid"
