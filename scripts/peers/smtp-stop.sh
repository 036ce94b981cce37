#!/usr/bin/env bash
# Stops the SMTP sinks started by smtp-start.sh (plain and TLS).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
stop_pidfile "$PEERS_RUN/smtp/pid"
stop_pidfile "$PEERS_RUN/smtp-tls/pid"
