#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS each (default 60) from the seed corpus
# in fuzz/seeds/ (fuzz/seed.sh writes it), keeping what each run learns in fuzz/corpus/, and
# prints each target's executions per second and coverage. Needs the nightly toolchain and
# cargo-fuzz (`cargo install cargo-fuzz`). A crash stops the script; its input is in
# fuzz/artifacts/TARGET/.
#   fuzz/run.sh                  # every target, 60 s each
#   SECONDS_PER_TARGET=600 fuzz/run.sh admission mpegts
#   CHECK_OVERFLOW=1 fuzz/run.sh   # with debug assertions: integer overflow aborts (slower)
set -euo pipefail
cd "$(dirname "$0")"
seconds=${SECONDS_PER_TARGET:-60}
build=(-O)
if [ "${CHECK_OVERFLOW:-0}" = 1 ]; then build=(-O -a); fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
cargo +nightly fuzz build "${build[@]}"
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  if [ -d "seeds/$t" ]; then cp -n seeds/"$t"/* "corpus/$t/" 2>/dev/null || true; fi
  log=$(mktemp)
  cargo +nightly fuzz run "${build[@]}" "$t" "corpus/$t" -- -max_total_time="$seconds" \
    -print_final_stats=1 -rss_limit_mb=2048 >"$log" 2>&1 || { tail -40 "$log"; exit 1; }
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo '?')
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo '?')
  corpus=$(find "corpus/$t" -type f | wc -l)
  echo "$t: ${seconds} s, $runs executions ($((runs / seconds))/s), coverage $cov edges, $ft features, corpus $corpus inputs, no crash"
  rm -f "$log"
done
