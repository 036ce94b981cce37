#!/usr/bin/env bash
# Stops the SMTP sink started by smtp-start.sh.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
stop_pidfile "$PEERS_RUN/smtp/pid"
