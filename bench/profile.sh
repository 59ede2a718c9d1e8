#!/usr/bin/env bash
# Profiles the server during the SQLite C=64 login run; see docs/benchmarks.md.
#
#   bench/profile.sh [svg-output]     (default: $RESULTS/flamegraph-sqlite.svg)
#
# Starts a fresh SQLite server (synchronous=FULL unless SYNC=normal), warms it
# up, then records the server with `perf record --call-graph dwarf` while
# `latchkey-bench logins` runs N logins at concurrency C. Writes perf.data, a
# flat and an inclusive `perf report`, the folded stacks and, when inferno is
# installed (`cargo install inferno`), a flamegraph SVG.
#
# Approvals rotate over USERS approvers (500; see bench/run.sh for why).
# Tunables: N (20000), C (64), WARMUP (2000), FREQ (sampling Hz, 499), SYNC, USERS,
# CARGO_TARGET_DIR, RESULTS, SKIP_BUILD=1. Needs `perf` (linux-perf).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
N=${N:-20000}
C=${C:-64}
WARMUP=${WARMUP:-2000}
FREQ=${FREQ:-499}
SYNC=${SYNC:-full}
USERS=${USERS:-500}
RESULTS=${RESULTS:-$(mktemp -d "${TMPDIR:-/tmp}/latchkey-profile.XXXXXX")}
SVG=${1:-$RESULTS/flamegraph-sqlite.svg}
mkdir -p "$RESULTS"
export LATCHKEY_BENCH_PASSWORD="bench-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

command -v perf >/dev/null || { echo "perf is not installed (apt-get install linux-perf)" >&2; exit 1; }
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    (cd "$ROOT" && cargo build --release -p latchkey -p latchkey-bench)
fi
LK=$TARGET/release/latchkey
BENCH=$TARGET/release/latchkey-bench

DIR=$RESULTS/data
SESSIONS=$RESULTS/sessions
rm -rf "$DIR" "$SESSIONS"
# The first one alone: it creates the database.
ADMIN_LOG=$RESULTS/admin.log
echo "$LATCHKEY_BENCH_PASSWORD" | LATCHKEY_LOG=warn "$LK" admin --data-dir "$DIR" user add bench-1 >/dev/null 2>>"$ADMIN_LOG" ||
    { cat "$ADMIN_LOG" >&2; exit 1; }
seq 2 "$USERS" | xargs -P 2 -I{} sh -c 'echo "$LATCHKEY_BENCH_PASSWORD" | LATCHKEY_LOG=warn "$0" admin --data-dir "$1" user add "bench-{}" >/dev/null 2>>"$2"' \
    "$LK" "$DIR" "$ADMIN_LOG" || { tail "$ADMIN_LOG" >&2; exit 1; }
LOG=$RESULTS/server.log
SERVER_PID=
PERF_PID=
cleanup() {
    [[ -n $PERF_PID ]] && kill -INT "$PERF_PID" 2>/dev/null || true
    [[ -n $SERVER_PID ]] && kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT
start_server() {
    : >"$LOG"
    # One address sends everything: lift the per-network device-authorization limit.
    LATCHKEY_SQLITE_SYNC=$SYNC LATCHKEY_LOG=warn LATCHKEY_DEVICE_AUTH_PER_MINUTE=0 "$LK" serve --data-dir "$DIR" --listen 127.0.0.1:0 >"$LOG" 2>&1 &
    SERVER_PID=$!
    URL=
    for _ in $(seq 1 200); do
        URL=$(sed -n 's/^Latchkey listening on \(http:\/\/[0-9.:]*\).*/\1/p' "$LOG" | head -n1)
        [[ -n $URL ]] && break
        sleep 0.05
    done
    [[ -n $URL ]] || { cat "$LOG" >&2; exit 1; }
}
# Sign the approvers in on a server of their own (password hashing is not what we profile).
start_server
"$BENCH" sign-in --url "$URL" --username bench --users "$USERS" --sessions-file "$SESSIONS" >/dev/null
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || true
start_server
echo "server pid $SERVER_PID at $URL (sync=$SYNC); results in $RESULTS"
USER_ARGS=(--username bench --users "$USERS" --sessions-file "$SESSIONS" --source-addresses "${SOURCES:-8}")

"$BENCH" logins --url "$URL" "${USER_ARGS[@]}" --logins "$WARMUP" --concurrency "$C" >/dev/null

perf record -F "$FREQ" --call-graph dwarf,16384 -p "$SERVER_PID" -o "$RESULTS/perf.data" 2>"$RESULTS/perf-record.log" &
PERF_PID=$!
sleep 1
"$BENCH" logins --url "$URL" "${USER_ARGS[@]}" --logins "$N" --concurrency "$C" --server-pid "$SERVER_PID" |
    tee "$RESULTS/bench.txt"
kill -INT "$PERF_PID"
wait "$PERF_PID" || true
PERF_PID=

echo "reading the profile (this takes a while)..."
perf script -i "$RESULTS/perf.data" 2>/dev/null >"$RESULTS/perf.script"
perf report -i "$RESULTS/perf.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null |
    grep -v '^$' | head -n 200 >"$RESULTS/report-self.txt" || true
perf report -i "$RESULTS/perf.data" --children --sort symbol --stdio -g none 2>/dev/null |
    grep -v '^$' | head -n 200 >"$RESULTS/report-children.txt" || true
if command -v inferno-collapse-perf >/dev/null; then
    inferno-collapse-perf <"$RESULTS/perf.script" >"$RESULTS/folded.txt"
    inferno-flamegraph --title "latchkey serve, SQLite (synchronous=$SYNC), $C concurrent device logins" \
        --width 1600 --minwidth 1 <"$RESULTS/folded.txt" >"$SVG"
    echo "flamegraph: $SVG"
    "$ROOT/bench/perf-categories.py" "$RESULTS/folded.txt" | tee "$RESULTS/categories.txt"
else
    echo "inferno is not installed (cargo install inferno); no flamegraph drawn"
fi
echo "top functions by own time: $RESULTS/report-self.txt"
head -n 40 "$RESULTS/report-self.txt"
