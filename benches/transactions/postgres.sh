#!/usr/bin/env bash
# The PostgreSQL side of the single-row transaction figure: a throwaway
# cluster from Debian's postgresql package (synchronous_commit = on, fsync
# on), pgbench running the same transaction DriftDB's `transactions`
# benchmark runs, at 1, 8 and 32 clients. Prints a Markdown table.
#
# Usage: bash benches/transactions/postgres.sh [SECONDS]   (needs root: runs postgres as user postgres)
set -euo pipefail
seconds="${1:-10}"
bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
dir="$(mktemp -d /tmp/driftdb-pgbench.XXXXXX)"
chown postgres "$dir"
as_pg() { runuser -u postgres -- "$@"; }
cleanup() { as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT

as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$dir'
synchronous_commit = on
fsync = on
max_connections = 64
CONF
as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w start >/dev/null
psql_() { as_pg psql -h "$dir" -U postgres -qAt "$@"; }
psql_ -c "CREATE TABLE tx_bench (session INT NOT NULL, n BIGINT NOT NULL, note TEXT)"
cat >"$dir/tx.sql" <<'SQL'
\set n random(1, 1000000000)
BEGIN;
INSERT INTO tx_bench VALUES (:client_id, :n, 'single-row transaction');
COMMIT;
SQL
chown postgres "$dir/tx.sql"
echo "| clients | PostgreSQL $("$bin/postgres" --version | awk '{print $3}') transactions/s (pgbench, synchronous_commit=on) |"
echo "| --- | --- |"
for clients in 1 8 32; do
  threads=$(( clients < 2 ? clients : 2 ))
  tps=$(as_pg pgbench -h "$dir" -U postgres -n -c "$clients" -j "$threads" -T "$seconds" -f "$dir/tx.sql" postgres \
        | awk '/^tps/ {print int($3); exit}')
  echo "| $clients | $tps |"
done
