#!/usr/bin/env bash
# Load test: req/s, p50 and p99 per authentication scheme, against no auth (issue 7).
#
# Builds benches/peers (release), starts its load_server pinned to CPU 0 with one tokio thread,
# and runs wrk pinned to CPU 1 against each route: /none, /api-key, /basic (verified cache),
# /hs256, /rs256, /es256 (portcullis) and /peer-rs256 (jwt-authorizer). Routes are interleaved
# within each repetition so that a machine getting busier mid-run hurts them alike; per route the
# median run by req/s is kept, with its p50 and p99. 127.0.0.1 only.
#
# Usage: bash benches/load.sh [--csv FILE] [--plot FILE.svg]
# Environment: DURATION (s per run, 10), REPS (3), CONNECTIONS (64), PORT (18080), CSV, PLOT.
# Defaults take about 7 routes x 3 x 10 s = 3.5 min, plus the build.
set -euo pipefail

duration=${DURATION:-10}
reps=${REPS:-3}
connections=${CONNECTIONS:-64}
port=${PORT:-18080}
csv=${CSV:-}
plot=${PLOT:-}

while [[ $# -gt 0 ]]; do
    case $1 in
        --csv) csv=${2:?--csv needs a file}; shift 2 ;;
        --plot) plot=${2:?--plot needs a file}; shift 2 ;;
        -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
    esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
manifest=$root/benches/peers/Cargo.toml
target=${CARGO_TARGET_DIR:-$root/benches/peers/target}

cargo build --release --manifest-path "$manifest" --bin load_server --bin plot
server_bin=$target/release/load_server
plot_bin=$target/release/plot

if ! command -v wrk > /dev/null; then
    # Debian's wrk; as root here, through sudo where that is what there is.
    if [[ $(id -u) -eq 0 ]]; then
        sudo=()
    elif command -v sudo > /dev/null; then
        sudo=(sudo)
    else
        echo "wrk is missing and cannot be installed (not root, no sudo)" >&2
        exit 1
    fi
    "${sudo[@]}" apt-get install -y wrk || { "${sudo[@]}" apt-get update && "${sudo[@]}" apt-get install -y wrk; }
fi

# Server on CPU 0, load generator on CPU 1: each has a core and they do not share one.
if [[ $(nproc) -ge 2 ]] && command -v taskset > /dev/null; then
    server_pin=(taskset -c 0)
    client_pin=(taskset -c 1)
else
    echo "warning: fewer than 2 CPUs or no taskset; server and wrk are not pinned" >&2
    server_pin=()
    client_pin=()
fi

work=$(mktemp -d)
server_pid=
cleanup() {
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2> /dev/null || true
        wait "$server_pid" 2> /dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

"${server_pin[@]}" "$server_bin" "$port" "$work/credentials.json" > "$work/server.log" 2>&1 &
server_pid=$!
# The server checks every route (200 with its credential, 401 without) before it says ready.
for _ in $(seq 600); do
    grep -q '^ready$' "$work/server.log" && break
    if ! kill -0 "$server_pid" 2> /dev/null; then
        echo "load_server exited before it was ready:" >&2
        cat "$work/server.log" >&2
        exit 1
    fi
    sleep 0.1
done
grep -q '^ready$' "$work/server.log" || { echo "load_server not ready after 60 s" >&2; exit 1; }

# credentials.json holds one route per line: {"header":"…","route":"…","value":"…"}.
routes=()
declare -A header value
while IFS= read -r line; do
    [[ $line =~ \"route\":\"([^\"]*)\" ]] || continue
    route=${BASH_REMATCH[1]}
    [[ $line =~ \"header\":\"([^\"]*)\" ]] && header[$route]=${BASH_REMATCH[1]}
    [[ $line =~ \"value\":\"([^\"]*)\" ]] && value[$route]=${BASH_REMATCH[1]}
    routes+=("$route")
done < "$work/credentials.json"
[[ ${#routes[@]} -gt 0 && ${routes[0]} == /none ]] || { echo "bad credentials file" >&2; exit 1; }

# A wrk latency ("503.00us", "1.06ms", "1.20s") in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; unit = v; sub(/^[0-9.]+/, "", unit)
        if (unit == "us") n /= 1000; else if (unit == "s") n *= 1000; else if (unit == "m") n *= 60000
        printf "%.3f", n }'
}

echo "wrk -t1 -c$connections -d${duration}s, $reps repetitions, ${#routes[@]} routes"
declare -A runs # route -> lines of "req/s p50_ms p99_ms"
for rep in $(seq "$reps"); do
    for route in "${routes[@]}"; do
        args=(-t1 "-c$connections" "-d${duration}s" --latency)
        if [[ -n ${header[$route]} ]]; then
            args+=(-H "${header[$route]}: ${value[$route]}")
        fi
        out=$work/wrk.txt
        "${client_pin[@]}" wrk "${args[@]}" "http://127.0.0.1:$port$route" > "$out"
        # A 401 is fast: any non-2xx answer would make the numbers meaningless.
        if grep -q 'Non-2xx' "$out" || grep -q 'Socket errors' "$out"; then
            echo "$route: errors during the run:" >&2
            cat "$out" >&2
            exit 1
        fi
        rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
        p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
        p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
        printf '  rep %d %-12s %10.0f req/s  p50 %7.3f ms  p99 %7.3f ms\n' "$rep" "$route" "$rps" "$p50" "$p99"
        runs[$route]+="$rps $p50 $p99"$'\n'
    done
done

# The median run by req/s (the lower middle for an even count), with its own latencies.
declare -A median
for route in "${routes[@]}"; do
    median[$route]=$(printf '%s' "${runs[$route]}" | sort -g -k1,1 | awk -v m=$(((reps + 1) / 2)) 'NR == m')
done
baseline=$(echo "${median[/none]}" | awk '{print $1}')

results=$work/results.csv
echo "route,req_per_s,p50_ms,p99_ms,ratio_to_none" > "$results"
echo
printf '%-12s %10s %9s %9s %8s\n' route req/s 'p50 ms' 'p99 ms' 'vs none'
for route in "${routes[@]}"; do
    read -r rps p50 p99 <<< "${median[$route]}"
    ratio=$(awk -v a="$rps" -v b="$baseline" 'BEGIN {printf "%.3f", a / b}')
    printf '%-12s %10.0f %9.3f %9.3f %8.3f\n' "$route" "$rps" "$p50" "$p99" "$ratio"
    echo "$route,$rps,$p50,$p99,$ratio" >> "$results"
done

if [[ -n $csv ]]; then
    cp "$results" "$csv"
    echo "wrote $csv"
fi
if [[ -n $plot ]]; then
    "$plot_bin" "$results" "$plot" \
        "req/s per scheme: axum on 1 core, wrk -c$connections, median of $reps x ${duration}s"
fi
