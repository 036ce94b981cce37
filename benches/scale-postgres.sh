#!/usr/bin/env bash
# Runs the 1M-user scale measurement against a throwaway PostgreSQL sized like a server
# (shared_buffers=1GB), on a free port, in /dev/shm; removes it afterwards. Needs root (it
# runs initdb and pg_ctl as the postgres user, as the machine's own cluster does).
# Usage: benches/scale-postgres.sh [--users N] [--samples N]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/peers/lib.sh
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
dir=$(mktemp -d /dev/shm/ciam-scale.XXXXXX)
chmod 755 "$dir"; mkdir "$dir/data"; chown postgres:postgres "$dir/data"; chmod 700 "$dir/data"
port=$(free_port)
cleanup() { runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
runuser -u postgres -- "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
printf "listen_addresses='127.0.0.1'\nport=%s\nunix_socket_directories='%s'\nshared_buffers=1GB\nfsync=off\nsynchronous_commit=off\nfull_page_writes=off\n" \
  "$port" "$dir/data" >>"$dir/data/postgresql.conf"
runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/data/log" -w -t 30 start >/dev/null
cargo build --release -q -p ciam-benches --bin storage
CIAM_BENCH_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres" ./target/release/storage scale "$@"
