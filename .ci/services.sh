#!/usr/bin/env bash
# Makes sure the local PostgreSQL (127.0.0.1:5432, database `test`) and Redis (127.0.0.1:6379)
# that the store and lockout tests use are running; starts them if installed but stopped.
set -uo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! port_open 5432 && command -v pg_ctlcluster >/dev/null; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi
if ! port_open 6379 && command -v redis-server >/dev/null; then
  echo "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi
for _ in $(seq 1 30); do
  port_open 5432 && port_open 6379 && break
  sleep 1
done
if port_open 5432; then
  echo "PostgreSQL: up"
  # The tests use database `test`; create it where a fresh server lacks it.
  if command -v psql >/dev/null \
    && ! psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" 2>/dev/null | grep -q 1; then
    psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE test" 2>/dev/null \
      && echo "PostgreSQL: created database test"
  fi
else
  echo "PostgreSQL: not reachable"
fi
port_open 6379 && echo "Redis: up" || echo "Redis: not reachable"
exit 0
