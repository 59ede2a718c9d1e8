#!/usr/bin/env bash
# Builds the fuzz targets and runs each for a while, starting from the seeds in
# fuzz/corpus/<target>/. Works on the stable toolchain: libFuzzer comes from the
# libfuzzer-sys crate and coverage from LLVM's sanitizer-coverage pass, asked
# for with stable rustc flags (no cargo-fuzz, no nightly, no sanitizer).
#
#   bash fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]    (default: 60 s, every target)
#
# Targets run FUZZ_JOBS at a time (default: one per core).
#
# A crash or a broken property leaves its input in fuzz/artifacts/<target>/ and
# the script exits non-zero once every target has run. Reproduce one with
#   fuzz/target/<host>/release/<target> fuzz/artifacts/<target>/<file>
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-60}"
shift || true
all=(user_code names redirect form json dpop jwt signed_note)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

host="$(rustc -vV | sed -n 's/^host: //p')"
# What cargo-fuzz passes, minus the sanitizer: inline 8-bit counters and PC
# tables for libFuzzer's coverage, compare tracing so it can solve comparisons.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# --target keeps these flags off build scripts and proc macros, which must not be instrumented.
cargo build --release --locked --target "$host" "${targets[@]/#/--bin=}"

# One target per core at a time: each libFuzzer process is single-threaded.
jobs="${FUZZ_JOBS:-$(nproc)}"
run_one() {
  local t="$1" work="target/corpus/$1"
  mkdir -p "$work" "artifacts/$t"
  # New inputs go to the first directory (not committed); the seeds are only read.
  if "target/$host/release/$t" "$work" "corpus/$t" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
    -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"target/$t.log" 2>&1; then
    echo "--- fuzz $t (${seconds}s): ok"
    grep -E 'stat::number_of_executed_units|stat::peak_rss' "target/$t.log" || true
  else
    echo "--- fuzz $t (${seconds}s): FAILED"
    tail -n 40 "target/$t.log"
    touch "target/$t.failed"
  fi
}
rm -f target/*.failed
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  run_one "$t" &
done
wait

failed=()
for t in "${targets[@]}"; do
  [ -e "target/$t.failed" ] && failed+=("$t")
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "FUZZ FAILURES in: ${failed[*]}" >&2
  for t in "${failed[@]}"; do
    for a in "artifacts/$t"/*; do
      [ -e "$a" ] && echo "  $t: fuzz/$a  (reproduce: fuzz/target/$host/release/$t fuzz/$a)" >&2
    done
  done
  exit 1
fi
echo "fuzz: ${#targets[@]} targets ran ${seconds}s each, no failures"
