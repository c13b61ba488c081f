#!/usr/bin/env bash
# Each cargo feature builds alone, and so do the combinations the feature table in src/lib.rs
# documents, without a warning (issue #17). Also: a Basic-only build compiles no C.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
failed=0

# One `cargo check --lib` per line: "" is `--no-default-features` alone, "default" the defaults,
# "all" `--all-features`.
configurations=(
  ""
  tower axum actix sqlite postgres jwks redis cli basic api-key jwt introspection test-util
  self-service
  self-service,axum,actix,sqlite
  basic,tower
  api-key,sqlite,tower
  jwt,jwks,axum
  introspection,tower
  actix,sqlite,basic,api-key,jwt,introspection
  default
  all
)
for features in "${configurations[@]}"; do
  case "$features" in
    default) args=() ;;
    all) args=(--all-features) ;;
    *) args=(--no-default-features --features "$features") ;;
  esac
  started=$SECONDS
  echo "cargo check --lib ${args[*]}"
  # Not RUSTFLAGS=-D warnings, which would rebuild every dependency (aws-lc-sys's C included)
  # apart from the other stages' builds: cargo replays a fresh crate's warnings, so they are
  # counted from its output.
  set +e
  output=$(cargo check --lib --quiet --message-format short "${args[@]}" 2>&1)
  status=$?
  set -e
  warnings=$(grep -c '^warning\|: warning' <<<"$output" || true)
  echo "  $((SECONDS - started)) s, exit $status, $warnings warnings"
  if [ "$status" -ne 0 ] || [ "$warnings" -ne 0 ]; then
    echo "$output"
    failed=1
  fi
done

# `basic,tower` must not compile C: no `cc` or `cmake` crate among its (build) dependencies.
c_builders=$(cargo tree --no-default-features --features basic,tower -e normal,build --prefix none |
  awk '$1 == "cc" || $1 == "cmake"' | sort -u)
if [ -n "$c_builders" ]; then
  echo "basic,tower compiles C, through:"
  echo "$c_builders"
  cargo tree --no-default-features --features basic,tower -e normal,build -i cc 2>/dev/null || true
  failed=1
else
  echo "basic,tower: no cc or cmake"
fi
exit "$failed"
