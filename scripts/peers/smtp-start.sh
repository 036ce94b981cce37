#!/usr/bin/env bash
# Starts a real SMTP sink on 127.0.0.1 for the tests: PyPI aiosmtpd with its stock Mailbox
# handler, one Maildir file per message (with X-MailFrom / X-RcptTo headers added).
#
# Plain:            prints CIAM_TEST_SMTP_PORT, CIAM_TEST_SMTP_MAILDIR        (run dir smtp/)
# SMTP_TLS=1:       STARTTLS required, with a fresh certificate for localhost and 127.0.0.1
#                   signed by a throwaway CA; prints CIAM_TEST_SMTP_TLS_PORT, CIAM_TEST_SMTP_TLS_MAILDIR and
#                   CIAM_TEST_SMTP_TLS_CA                                  (run dir smtp-tls/)
# The lines are also written to $PEERS_RUN/<run dir>/env.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
if [ -n "${SMTP_TLS:-}" ]; then name=smtp-tls; prefix=CIAM_TEST_SMTP_TLS; else name=smtp; prefix=CIAM_TEST_SMTP; fi
run="$PEERS_RUN/$name"; mkdir -p "$run"
venv="${CIAM_SMTP_VENV:-$PEERS_RUN/smtp-venv}"
if [ ! -x "$venv/bin/aiosmtpd" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$PEERS_HERE/smtp-requirements.txt"
fi
stop_pidfile "$run/pid"
rm -rf "$run/maildir"
port="${SMTP_PORT:-$(free_port)}"
tls=()
if [ -n "${SMTP_TLS:-}" ]; then
  # A throwaway CA (the test trusts it) and a server certificate it signs: webpki refuses a
  # CA certificate used as the server's own.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=ciam test CA" \
    -keyout "$run/ca-key.pem" -out "$run/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -keyout "$run/key.pem" -out "$run/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$run/ext.cnf"
  openssl x509 -req -in "$run/server.csr" -CA "$run/ca.pem" -CAkey "$run/ca-key.pem" -CAcreateserial \
    -days 2 -extfile "$run/ext.cnf" -out "$run/cert.pem" 2>/dev/null
  tls=(--tlscert "$run/cert.pem" --tlskey "$run/key.pem")
fi
# -n: do not setuid to nobody (CI runs as root).
nohup "$venv/bin/python" -m aiosmtpd -n -l "127.0.0.1:$port" "${tls[@]}" \
  -c aiosmtpd.handlers.Mailbox "$run/maildir" >"$run/log" 2>&1 &
echo $! >"$run/pid"
if ! wait_for 20 "$venv/bin/python" -c "import smtplib,sys; smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=2).quit()" "$port"; then
  cat "$run/log" >&2
  exit 1
fi
mkdir -p "$run/maildir/new"
{
  printf '%s_PORT=%s\n%s_MAILDIR=%s\n' "$prefix" "$port" "$prefix" "$run/maildir"
  [ -n "${SMTP_TLS:-}" ] && printf '%s_CA=%s\n' "$prefix" "$run/ca.pem"
  true
} | tee "$run/env"
