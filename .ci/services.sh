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

# TLS for the transport tests (tests/tls.rs): a CA, a certificate for `localhost` signed by it
# and a second CA that signed nothing, in $TLS_DIR (the tests' default; they take
# PORTCULLIS_TEST_TLS_DIR too). PostgreSQL serves the `localhost` certificate (a copy in its data
# directory, so a restart does not depend on /tmp); a second Redis speaks only TLS on
# 127.0.0.1:6380. Plain connections to 5432 and 6379 keep working. Idempotent.
TLS_DIR=${PORTCULLIS_TEST_TLS_DIR:-/tmp/portcullis-ci-tls}
REDIS_TLS_PORT=6380
tls_generated=0
if command -v openssl >/dev/null && [ ! -s "$TLS_DIR/server.crt" ]; then
  echo "TLS: generating a CA and a localhost certificate in $TLS_DIR"
  mkdir -p "$TLS_DIR" && chmod 755 "$TLS_DIR"
  (
    cd "$TLS_DIR" || exit 1
    for ca in ca wrong-ca; do
      openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=portcullis test $ca" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
        -keyout "$ca.key" -out "$ca.crt" 2>/dev/null
    done
    openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile server.ext -out server.crt 2>/dev/null
    chmod 644 ca.crt wrong-ca.crt server.crt
    chmod 600 ca.key wrong-ca.key server.key
  ) && tls_generated=1
fi
if [ -s "$TLS_DIR/server.crt" ] && port_open 5432 && command -v psql >/dev/null; then
  pg_data=$(psql -h 127.0.0.1 -U postgres -d postgres -tAc "SHOW data_directory" 2>/dev/null)
  if [ -n "$pg_data" ] && ! cmp -s "$TLS_DIR/server.crt" "$pg_data/portcullis-ci-server.crt"; then
    # Only point PostgreSQL at the files once both are in place: a setting naming a missing file
    # would keep it from starting next time.
    install -o postgres -g postgres -m 644 "$TLS_DIR/server.crt" "$pg_data/portcullis-ci-server.crt" &&
    install -o postgres -g postgres -m 600 "$TLS_DIR/server.key" "$pg_data/portcullis-ci-server.key" &&
    psql -h 127.0.0.1 -U postgres -d postgres -q \
      -c "ALTER SYSTEM SET ssl = on" \
      -c "ALTER SYSTEM SET ssl_cert_file = '$pg_data/portcullis-ci-server.crt'" \
      -c "ALTER SYSTEM SET ssl_key_file = '$pg_data/portcullis-ci-server.key'" \
      -c "SELECT pg_reload_conf()" >/dev/null && echo "PostgreSQL: TLS with the localhost certificate"
    sleep 1
  fi
  psql "host=localhost dbname=test user=postgres sslmode=verify-full sslrootcert=$TLS_DIR/ca.crt" \
    -tAc "SELECT 1" >/dev/null 2>&1 && echo "PostgreSQL: TLS up (verify-full as localhost)" \
    || echo "PostgreSQL: TLS not working"
fi
if [ -s "$TLS_DIR/server.crt" ] && command -v redis-server >/dev/null; then
  if [ "$tls_generated" = 1 ] && port_open "$REDIS_TLS_PORT"; then
    # Still serving certificates from an earlier CA: restart it with the new ones.
    redis-cli -p "$REDIS_TLS_PORT" --tls --insecure shutdown nosave >/dev/null 2>&1 || true
    sleep 1
  fi
  if ! port_open "$REDIS_TLS_PORT"; then
    echo "starting Redis with TLS on $REDIS_TLS_PORT"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 --port 0 --tls-port "$REDIS_TLS_PORT" \
      --tls-cert-file "$TLS_DIR/server.crt" --tls-key-file "$TLS_DIR/server.key" \
      --tls-ca-cert-file "$TLS_DIR/ca.crt" --tls-auth-clients no --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci-tls.log || true
    for _ in $(seq 1 10); do port_open "$REDIS_TLS_PORT" && break; sleep 0.5; done
  fi
  port_open "$REDIS_TLS_PORT" && echo "Redis TLS: up on $REDIS_TLS_PORT" || echo "Redis TLS: not reachable"
fi
exit 0
