#!/usr/bin/env bash
# Latchkey benchmark: one command, see docs/benchmarks.md.
#
#   bench/run.sh [sqlite|postgres|all]     (default: all)
#
# For each configuration (SQLite with synchronous=FULL, SQLite with NORMAL,
# PostgreSQL) it starts a fresh `latchkey serve` on a free port of 127.0.0.1,
# creates the approving users, signs them in once (keeping their sessions in a
# file, so password hashing stays out of the measured processes), and runs:
#   * complete device logins (authorize → approve → token): C=1, C=16, C=64
#     through the instant endpoint, and C=64 with one RFC 8628 poll instead;
#   * multi-machine sync: two devices of one user send EVENTS (EVENTS1) captures
#     each at once, half of them the same as the other's, in batches of 1,000 (1);
#     then one pulls the stream;
#   * trusted sessions (issue 9): 8 latchkey-cli devices of one user trusting each
#     other; session creation until every member joined for 2, 4 and 8 members
#     (SESSION_REPEAT each), then relay throughput (SESSION_MESSAGES messages of
#     1 KiB and 16 KiB) in 2- and 8-member sessions, one sender and 4 at once;
#   * a soak on a restarted server: 10,000 pending grants, 1,000 devices parked
#     on the instant endpoint for 20 s;
# and reads the server's VmHWM / VmRSS from /proc. It prints a summary table at
# the end; every run's JSON is kept in $RESULTS (printed at the start).
#
# Every approval registers a device for its approver, and a user may have at
# most 50 active devices, so approvals rotate over USERS approvers (default 500)
# and each run ends by revoking the devices it registered (unmeasured). The
# server also allows at most 20 approvals in flight per client network, so the
# load comes from SOURCES (8) loopback addresses, 127.0.0.1 to 127.0.0.8.
#
# Tunables (environment): N (logins per run at C=16/64, default 20000),
# N1 (logins at C=1, default 2000), WARMUP (default 2000), PENDING (10000),
# WAITERS (1000), HOLD (20), USERS (500), SOURCES (8), QUIET_WAIT, QUIET_PERCENT, RETRIES, DISTURBED, PGHOST/PGPORT/PGUSER (127.0.0.1/5432/postgres),
# PGDATABASE_BENCH (latchkey_bench: dropped and re-created for each run!),
# CARGO_TARGET_DIR, RESULTS (output directory), SKIP_BUILD=1, LK_BIN (the server
# binary to measure, e.g. an older build; default the one built here),
# EVENTS (captures per device, batches of 1,000, default 100000), EVENTS1 (batches of 1, default 3000),
# SESSION_REPEAT (sessions created per member count, default 50), SESSION_MESSAGES (messages per relay run, default 2000),
# RUNS (which runs, default "c1 c16 c64 c64-poll events sessions soak"),
# REPLICAS (PostgreSQL: that many servers behind HAProxy, default 1).
set -euo pipefail

which_runs=${1:-all}
case "$which_runs" in
sqlite) configs=(sqlite-full sqlite-normal) ;;
postgres) configs=(postgres) ;;
all) configs=(sqlite-full sqlite-normal postgres) ;;
sqlite-full | sqlite-normal) configs=("$which_runs") ;;
*)
    echo "usage: $0 [sqlite|postgres|all]" >&2
    exit 2
    ;;
esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
N=${N:-20000}
N1=${N1:-2000}
WARMUP=${WARMUP:-2000}
PENDING=${PENDING:-10000}
WAITERS=${WAITERS:-1000}
USERS=${USERS:-500}
SOURCES=${SOURCES:-8}
HOLD=${HOLD:-20}
EVENTS=${EVENTS:-100000}
EVENTS1=${EVENTS1:-3000}
SESSION_REPEAT=${SESSION_REPEAT:-50}
SESSION_MESSAGES=${SESSION_MESSAGES:-2000}
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
PGUSER=${PGUSER:-postgres}
PGDB=${PGDATABASE_BENCH:-latchkey_bench}
RESULTS=${RESULTS:-$(mktemp -d "${TMPDIR:-/tmp}/latchkey-bench.XXXXXX")}
mkdir -p "$RESULTS"
export LATCHKEY_BENCH_PASSWORD="bench-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
# The server secret key that encrypts the stored keys: PostgreSQL needs one given, and
# every replica and admin command of a run must share it (each run makes a fresh database).
export LATCHKEY_SECRET_KEY="${LATCHKEY_SECRET_KEY:-lksk_$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')}"

# 1,000 parked waiters plus the workers' connections, on both ends.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "open files limit: $(ulimit -n); results in $RESULTS"

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    (cd "$ROOT" && cargo build --release -p latchkey -p latchkey-bench)
fi
LK=${LK_BIN:-$TARGET/release/latchkey}
BENCH=$TARGET/release/latchkey-bench
RUNS=" ${RUNS:-c1 c16 c64 c64-poll events sessions soak} "
wants() { [[ $RUNS == *" $1 "* ]]; }

SERVER_PID=
URL=
# With REPLICAS > 1 (PostgreSQL only): the other replicas and the balancer in front of them.
MORE_PIDS=()

cleanup() {
    for pid in "$SERVER_PID" "${MORE_PIDS[@]}"; do
        if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
}
trap cleanup EXIT

storage_args() { # config data_dir
    case "$1" in
    postgres) echo "--database postgres://$PGUSER@$PGHOST:$PGPORT/$PGDB" ;;
    *) echo "--data-dir $2" ;;
    esac
}

sync_mode() {
    case "$1" in
    sqlite-normal) echo normal ;;
    *) echo full ;;
    esac
}

# Starts REPLICAS servers (default 1; more only on PostgreSQL) and sets SERVER_PID and
# URL. With several, they share one public URL behind HAProxy (round robin, client
# addresses passed on in X-Forwarded-For), URL is the balancer's, and SERVER_PID is
# the first replica's: the per-run server CPU and memory are that replica's alone.
start_server() { # config data_dir log
    local cfg=$1 dir=$2 log=$3 n=${REPLICAS:-1}
    if ((n > 1)) && [[ $cfg == postgres ]]; then
        start_replicas "$cfg" "$dir" "$log" "$n"
        return
    fi
    start_one "$cfg" "$dir" "$log"
}

start_replicas() { # config data_dir log n
    local cfg=$1 dir=$2 log=$3 n=$4 port servers="" first_pid i
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    MORE_PIDS=()
    for i in $(seq 1 "$n"); do
        PUBLIC_URL=http://127.0.0.1:$port start_one "$cfg" "$dir" "$log.$i"
        servers+="    server r$i ${URL#http://}"$'\n'
        if ((i == 1)); then first_pid=$SERVER_PID; else MORE_PIDS+=("$SERVER_PID"); fi
    done
    cat >"$log.haproxy.cfg" <<CFG
global
    maxconn 8000
defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    option forwardfor
frontend latchkey
    bind 127.0.0.1:$port
    default_backend replicas
backend replicas
    balance roundrobin
$servers
CFG
    haproxy -db -f "$log.haproxy.cfg" >"$log.haproxy" 2>&1 &
    MORE_PIDS+=("$!")
    SERVER_PID=$first_pid
    URL=http://127.0.0.1:$port
    for _ in $(seq 1 100); do curl -fsS "$URL/healthz" >/dev/null 2>&1 && return; sleep 0.1; done
    echo "haproxy did not answer on $URL" >&2
    exit 1
}

start_one() { # config data_dir log
    local cfg=$1 dir=$2 log=$3
    : >"$log"
    # shellcheck disable=SC2046
    # All the load comes from one address, so the per-network limit on device
    # authorizations (120 a minute by default) is lifted.
    LATCHKEY_SQLITE_SYNC=$(sync_mode "$cfg") LATCHKEY_LOG=warn LATCHKEY_DEVICE_AUTH_PER_MINUTE=0 \
        LATCHKEY_METRICS_LISTEN=127.0.0.1:0 \
        env ${PUBLIC_URL:+LATCHKEY_PUBLIC_URL=$PUBLIC_URL LATCHKEY_TRUST_PROXY_HEADERS=true} "$LK" serve $(storage_args "$cfg" "$dir") --listen 127.0.0.1:0 >"$log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 200); do
        URL=$(sed -n 's/^Latchkey listening on \(http:\/\/[0-9.:]*\).*/\1/p' "$log" | head -n1)
        METRICS_URL=$(sed -n 's/^Prometheus metrics on \(http:\/\/[0-9.:]*\/metrics\).*/\1/p' "$log" | head -n1)
        [[ -n $URL ]] && break
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            cat "$log" >&2
            echo "the server did not start" >&2
            exit 1
        fi
        sleep 0.05
    done
    [[ -n $URL ]] || { cat "$log" >&2; echo "the server did not say where it listens" >&2; exit 1; }
}

# How long audit entries waited for their seal, over the server's life so far:
# the p50/p99 upper bucket bounds of latchkey_audit_seal_lag_seconds (one sample
# per seal: its oldest entry). Older servers without the metric print n/a.
seal_lag_line() { # label
    local text
    text=$(curl -fsS "${METRICS_URL:-http://127.0.0.1:1/none}" 2>/dev/null | grep '^latchkey_audit_seal_lag_seconds_bucket' || true)
    if [[ -z $text ]]; then
        echo "$1: audit seal lag n/a"
        return
    fi
    echo "$text" | sed 's/.*le="\([^"]*\)"} \(.*\)/\1 \2/' | awk -v label="$1" -v out="$RESULTS/$CFG.seal-lag.jsonl" '
        { le[NR] = $1; n[NR] = $2; total = $2 }
        END {
            for (i = 1; i <= NR; i++) {
                if (p50 == "" && n[i] >= 0.5 * total) p50 = le[i]
                if (p99 == "" && n[i] >= 0.99 * total) p99 = le[i]
            }
            printf "%s: audit seal lag p50 <= %s s, p99 <= %s s over %d seals\n", label, p50, p99, total
            printf "{\"label\":\"%s\",\"seals\":%d,\"p50_le_s\":\"%s\",\"p99_le_s\":\"%s\"}\n", label, total, p50, p99 >> out
        }'
}

stop_server() {
    local pid
    for pid in "$SERVER_PID" "${MORE_PIDS[@]}"; do
        kill -TERM "$pid"
        wait "$pid" || true
    done
    SERVER_PID=
    MORE_PIDS=()
}

memory_line() { # label
    local hwm rss
    hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$SERVER_PID/status")
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status")
    printf '%s: server VmHWM %.1f MiB, VmRSS %.1f MiB\n' "$1" "$(echo "$hwm/1024" | bc -l)" "$(echo "$rss/1024" | bc -l)"
    echo "{\"label\":\"$1\",\"vm_hwm_kib\":$hwm,\"vm_rss_kib\":$rss}" >>"$RESULTS/$CFG.memory.jsonl"
}

# Percent of all CPUs busy over the next second.
busy_percent() {
    local a b
    a=$(awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
    sleep 1
    b=$(awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
    echo "$a $b" | awk '{d = $4 - $2; print (d > 0 ? int(100 * ($3 - $1) / d) : 0)}'
}

# The load generator shares the machine; wait (up to QUIET_WAIT seconds, default
# 300) until nothing else keeps it more than QUIET_PERCENT (10) busy for 3 s running.
wait_quiet() {
    local b quiet=0
    for _ in $(seq 1 "${QUIET_WAIT:-300}"); do
        b=$(busy_percent)
        if ((b < ${QUIET_PERCENT:-10})); then
            quiet=$((quiet + 1))
            ((quiet >= 3)) && return 0
        else
            quiet=0
        fi
    done
    echo "warning: the machine is still ${b}% busy with something else; these numbers are disturbed" >&2
}

# Runs one bench invocation, shows its table, keeps its JSON. A login run that
# something else on the machine disturbed (more than DISTURBED, default 10%, of the
# machine's CPU went to neither the server, the load generator nor PostgreSQL) is
# repeated up to RETRIES (2) times; the least disturbed try is kept.
# PostgreSQL's own counters for the bench database: commits, rows fetched, rows returned, blocks hit.
pg_counters() {
    psql -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres -Atc \
        "SELECT xact_commit, tup_fetched, tup_returned, blks_hit FROM pg_stat_database WHERE datname = '$PGDB'"
}

bench() { # name args...
    local name=$1
    shift
    local out=$RESULTS/$CFG.$name try frac best= pg_before=
    for try in $(seq 1 $((${RETRIES:-2} + 1))); do
        echo
        wait_quiet
        if ((try == 1)); then echo "== $CFG / $name"; else echo "== $CFG / $name (try $try)"; fi
        [[ $CFG == postgres ]] && pg_before=$(pg_counters)
        "$BENCH" "$@" --url "$URL" --username bench --users "$USERS" --sessions-file "$SESSIONS" \
            --source-addresses "$SOURCES" --server-pid "$SERVER_PID" --json >"$out.raw"
        # The last line is the JSON; the rest is the human-readable table.
        frac=$(tail -n1 "$out.raw" | jq -r --argjson n "$(nproc)" '(.other_cpu_secs // 0) / ((.wall_secs // 1) * $n)')
        sed '$d' "$out.raw"
        if [[ -z $best ]] || awk -v a="$frac" -v b="$best" 'BEGIN {exit !(a < b)}'; then
            best=$frac
            tail -n1 "$out.raw" >"$out.json"
            sed '$d' "$out.raw" >"$out.txt"
            if [[ -n $pg_before ]]; then
                # Per login, counting the warm-up and the end-of-run revocations (the counters see everything).
                echo "$pg_before|$(pg_counters)|$(jq -r '(.logins // 0) + (.warmup // 0)' "$out.json")" | awk -F'|' '
                    $9 > 0 { printf "{\"commits_per_login\":%.2f,\"rows_fetched_per_login\":%.1f,\"rows_returned_per_login\":%.1f,\"blocks_hit_per_login\":%.1f}\n",
                             ($5-$1)/$9, ($6-$2)/$9, ($7-$3)/$9, ($8-$4)/$9 }' >"$out.pg.json"
                cat "$out.pg.json"
            fi
        fi
        rm -f "$out.raw"
        awk -v a="$frac" -v d="${DISTURBED:-0.10}" 'BEGIN {exit !(a < d)}' && break
        echo "(disturbed: $(awk -v a="$frac" 'BEGIN {printf "%.0f", 100 * a}')% of the machine went to other processes; running it again)"
    done
}

for CFG in "${configs[@]}"; do
    echo
    echo "######## $CFG"
    DIR=$RESULTS/$CFG.data
    rm -rf "$DIR"
    if [[ $CFG == postgres ]]; then
        dropdb --if-exists -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" "$PGDB"
        createdb -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" "$PGDB"
    fi
    SESSIONS=$RESULTS/$CFG.sessions
    rm -f "$SESSIONS" "$RESULTS/$CFG.memory.jsonl"
    t0=$(date +%s)
    ADMIN_LOG=$RESULTS/$CFG.admin.log
    # The first one alone: it creates (or migrates) the database.
    # shellcheck disable=SC2046
    echo "$LATCHKEY_BENCH_PASSWORD" | LATCHKEY_LOG=warn "$LK" admin $(storage_args "$CFG" "$DIR") user add bench-1 \
        >/dev/null 2>>"$ADMIN_LOG" || { cat "$ADMIN_LOG" >&2; exit 1; }
    seq 2 "$USERS" | xargs -P 2 -I{} sh -c 'echo "$LATCHKEY_BENCH_PASSWORD" | LATCHKEY_LOG=warn "$0" admin $1 user add "bench-{}" >/dev/null 2>>"$2"' \
        "$LK" "$(storage_args "$CFG" "$DIR")" "$ADMIN_LOG" || { tail "$ADMIN_LOG" >&2; exit 1; }
    echo "created $USERS approvers in $(($(date +%s) - t0)) s"
    # The logins are an ordinary public app's (bearer tokens), as the reference provider's are;
    # Latchkey's own CLI app requires DPoP.
    # shellcheck disable=SC2046
    LATCHKEY_LOG=warn "$LK" admin $(storage_args "$CFG" "$DIR") app add latchkey-bench --name "Latchkey bench" \
        --grant device_code --grant refresh_token >/dev/null 2>>"$ADMIN_LOG" || { cat "$ADMIN_LOG" >&2; exit 1; }

    # Sign-ins hash passwords (Argon2, 19 MiB each): done once, in their own server process.
    start_server "$CFG" "$DIR" "$RESULTS/$CFG.server-signin.log"
    "$BENCH" sign-in --url "$URL" --username bench --users "$USERS" --sessions-file "$SESSIONS" \
        --server-pid "$SERVER_PID" | tee "$RESULTS/$CFG.sign-in.txt"
    memory_line "after $USERS sign-ins"
    stop_server

    start_server "$CFG" "$DIR" "$RESULTS/$CFG.server.log"
    echo "server pid $SERVER_PID at $URL (sync=$(sync_mode "$CFG"))"
    memory_line "idle after start"
    wants c1 && bench logins-c1 logins --logins "$N1" --concurrency 1 --warmup 200 --revoke-devices
    wants c16 && bench logins-c16 logins --logins "$N" --concurrency 16 --warmup "$WARMUP" --revoke-devices
    wants c64 && bench logins-c64 logins --logins "$N" --concurrency 64 --warmup "$WARMUP" --revoke-devices
    wants c64-poll && bench logins-c64-poll logins --logins "$N" --concurrency 64 --token-via poll --revoke-devices
    wants events && bench events-b1000 events --events "$EVENTS" --batch 1000
    wants events && bench events-b1 events --events "$EVENTS1" --batch 1
    wants sessions && bench sessions sessions --repeat "$SESSION_REPEAT" --messages "$SESSION_MESSAGES"
    memory_line "after the login runs"
    seal_lag_line "after the login runs"
    stop_server

    if wants soak; then
        # A fresh process, so its VmHWM is the soak's alone.
        start_server "$CFG" "$DIR" "$RESULTS/$CFG.server-soak.log"
        memory_line "soak server idle after start"
        bench soak soak --pending "$PENDING" --waiters "$WAITERS" --hold-secs "$HOLD"
        memory_line "after the soak"
        stop_server
    fi
done

echo
echo "######## summary ($(nproc) cores, load generator on the same machine)"
if command -v jq >/dev/null; then
    printf '%-14s %-14s %9s %8s %8s %8s %8s %8s %8s %9s %9s %9s\n' \
        config run logins/s auth50 auth99 appr50 appr99 tok50 tok99 a2t50 a2t99 serverMiB
    for CFG in "${configs[@]}"; do
        for run in logins-c1 logins-c16 logins-c64 logins-c64-poll; do
            f=$RESULTS/$CFG.$run.json
            [[ -f $f ]] || continue
            jq -r --arg c "$CFG" --arg r "$run" '[$c, $r, .logins_per_sec, .authorize.p50_ms, .authorize.p99_ms,
                .approve.p50_ms, .approve.p99_ms, .token.p50_ms, .token.p99_ms,
                .approve_to_token.p50_ms, .approve_to_token.p99_ms,
                ((.server.sampled_peak_rss_kib // 0) / 1024)] |
                "\(.[0]) \(.[1]) \(.[2]|floor) \(.[3:]|map(.*100|round/100)|join(" "))"' "$f" |
                awk '{printf "%-14s %-14s %9s %8s %8s %8s %8s %8s %8s %9s %9s %9s\n", $1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12}'
        done
        jq -r --arg c "$CFG" '"\($c) memory \(.label): VmHWM \(.vm_hwm_kib / 1024 | round) MiB, VmRSS \(.vm_rss_kib / 1024 | round) MiB"' \
            "$RESULTS/$CFG.memory.jsonl" 2>/dev/null || true
        f=$RESULTS/$CFG.sessions.json
        [[ -f $f ]] && jq -r --arg c "$CFG" '.creation[] | "\($c) sessions: \(.members) members: create p50 \(.create.p50_ms) ms p99 \(.create.p99_ms) ms; all joined p50 \(.all_joined.p50_ms) ms p99 \(.all_joined.p99_ms) ms"' "$f"
        [[ -f $f ]] && jq -r --arg c "$CFG" '.relay[] | "\($c) relay: \(.members) members, \(.senders) sender(s), \(.message_bytes) B: sent \(.send_messages_per_sec|floor) msg/s \(.send_mb_per_sec*100|round/100) MB/s; delivered \(.delivered_messages_per_sec|floor) msg/s \(.delivered_mb_per_sec*100|round/100) MB/s (\(.received)/\(.messages), \(.gaps) gaps)"' "$f"
        f=$RESULTS/$CFG.soak.json
        [[ -f $f ]] && jq -r --arg c "$CFG" '"\($c) soak: \(.grants_created) pending, \(.parked_at_start_of_hold) parked: server peak VmRSS \((.server_during_hold.sampled_peak_rss_kib // 0) / 1024 | .*10|round/10) MiB, VmHWM \((.server_during_hold.end.vm_hwm_kib // 0) / 1024 | .*10|round/10) MiB; approval→token p50 \(.approve_to_token.p50_ms) ms p99 \(.approve_to_token.p99_ms) ms"' "$f"
    done
    echo "(latencies in ms; serverMiB = peak VmRSS sampled during that run; a2t = approval → token)"
fi
echo "results: $RESULTS"
