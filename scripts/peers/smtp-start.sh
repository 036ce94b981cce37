#!/usr/bin/env bash
# Starts a real SMTP sink on 127.0.0.1 for the tests: PyPI aiosmtpd with its stock Mailbox
# handler, one Maildir file per message (with X-MailFrom / X-RcptTo headers added).
# Prints CIAM_TEST_SMTP_PORT and CIAM_TEST_SMTP_MAILDIR (also written to $PEERS_RUN/smtp/env).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
run="$PEERS_RUN/smtp"; mkdir -p "$run"
venv="${CIAM_SMTP_VENV:-$PEERS_RUN/smtp-venv}"
if [ ! -x "$venv/bin/aiosmtpd" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$PEERS_HERE/smtp-requirements.txt"
fi
stop_pidfile "$run/pid"
rm -rf "$run/maildir"
port="${SMTP_PORT:-$(free_port)}"
# -n: do not setuid to nobody (CI runs as root).
nohup "$venv/bin/python" -m aiosmtpd -n -l "127.0.0.1:$port" \
  -c aiosmtpd.handlers.Mailbox "$run/maildir" >"$run/log" 2>&1 &
echo $! >"$run/pid"
if ! wait_for 20 "$venv/bin/python" -c "import smtplib,sys; smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=2).quit()" "$port"; then
  cat "$run/log" >&2
  exit 1
fi
mkdir -p "$run/maildir/new"
printf 'CIAM_TEST_SMTP_PORT=%s\nCIAM_TEST_SMTP_MAILDIR=%s\n' "$port" "$run/maildir" | tee "$run/env"
