#!/usr/bin/env bash
# A/B: two Latchkey server binaries measured alternately in one session, so a
# change is judged by a ratio from the same machine at the same time rather
# than by figures from different runs (these machines are shared and noisy).
#
#   bench/ab.sh OLD_BINARY [NEW_BINARY] [CONFIG]
#
# NEW_BINARY defaults to this tree's release build; CONFIG to sqlite-full
# (any of bench/run.sh's). Each of ROUNDS (default 3) rounds runs bench/run.sh
# once per binary, in alternating order, with RUNS (default "c64") on a fresh
# database; N, USERS and the other run.sh settings pass through (defaults here:
# N=6000, USERS=200, WARMUP=1000; SKIP_BUILD=1 uses the binaries as they are).
# Prints each run's logins/s and the median
# NEW/OLD ratio per run kind.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OLD=${1:?usage: $0 OLD_BINARY [NEW_BINARY] [CONFIG]}
NEW=${2:-$ROOT/target/release/latchkey}
CFG=${3:-sqlite-full}
ROUNDS=${ROUNDS:-3}
export RUNS=${RUNS:-c64} N=${N:-6000} USERS=${USERS:-200} WARMUP=${WARMUP:-1000}
OUT=$(mktemp -d "${TMPDIR:-/tmp}/latchkey-ab.XXXXXX")
echo "A/B of $OLD (old) and $NEW (new) on $CFG, runs: $RUNS; results in $OUT"
[[ ${SKIP_BUILD:-0} == 1 ]] || (cd "$ROOT" && cargo build --release -p latchkey -p latchkey-bench)

for round in $(seq 1 "$ROUNDS"); do
    # Alternate which goes first, so neither always gets the cooler machine.
    if ((round % 2)); then order="old new"; else order="new old"; fi
    for which in $order; do
        bin=$OLD
        [[ $which == new ]] && bin=$NEW
        echo "== round $round: $which"
        RESULTS=$OUT/$which-$round LK_BIN=$bin SKIP_BUILD=1 "$ROOT/bench/run.sh" "$CFG" >"$OUT/$which-$round.log" 2>&1 ||
            { tail -n 30 "$OUT/$which-$round.log" >&2; exit 1; }
        for f in "$OUT/$which-$round"/"$CFG".logins-*.json; do
            [[ $f == *.pg.json ]] && continue # PostgreSQL's counters, not a run
            run=${f##*.logins-}
            echo "$which $round ${run%.json} $(jq -r .logins_per_sec "$f")" | tee -a "$OUT/summary"
        done
    done
done

echo
echo "run      old logins/s (each round)     new logins/s (each round)     median new/old"
for run in $(awk '{print $3}' "$OUT/summary" | sort -u); do
    olds=$(awk -v r="$run" '$1 == "old" && $3 == r {printf "%d ", $4}' "$OUT/summary")
    news=$(awk -v r="$run" '$1 == "new" && $3 == r {printf "%d ", $4}' "$OUT/summary")
    # Each round's new/old, then the median of those.
    ratios=$(awk -v r="$run" '$3 == r {v[$1 " " $2] = $4} END {for (k in v) {split(k, p, " ");
        if (p[1] == "new" && ("old " p[2]) in v) print v[k] / v["old " p[2]]}}' "$OUT/summary" | sort -n)
    n=$(echo "$ratios" | wc -l)
    ratio=$(echo "$ratios" | awk -v n="$n" '{a[NR] = $1} END {print (n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2)}')
    printf '%-8s %-29s %-29s %.2f\n' "$run" "$olds" "$news" "$ratio"
done
