#!/usr/bin/env bash
# Makes sure the machine's PostgreSQL (127.0.0.1:5432, trust auth, database `test`) and Redis
# (127.0.0.1:6379) answer, starting them with the machine kind's documented commands when they
# are down. Exits non-zero if either still does not answer: the tests must not silently skip.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; }

if ! pg_up; then
  echo "starting PostgreSQL" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
  wait_for 30 pg_up || { echo "PostgreSQL is not answering on 127.0.0.1:5432" >&2; exit 1; }
fi
if ! psql -h 127.0.0.1 -U postgres -tAc 'select 1' test >/dev/null 2>&1; then
  psql -h 127.0.0.1 -U postgres -c 'create database test' postgres >/dev/null || { echo "cannot create database test" >&2; exit 1; }
fi
if ! redis_up; then
  echo "starting Redis" >&2
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  wait_for 20 redis_up || { echo "Redis is not answering on 127.0.0.1:6379" >&2; exit 1; }
fi
echo "CIAM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test"
echo "CIAM_TEST_REDIS_URL=redis://127.0.0.1:6379/"
