#!/usr/bin/env bash
# The anycast table of issue 17: `run anycast` on Waxman-1024, transit-stub 600 and the
# WonderNetwork matrix, seeds 1-5, 4 and 8 servers, 40 and 128 clients. One row per run:
# mean response times, anycast's ratios to the oracle, nearest and random, and the two
# reference lines (the oracle informed every push gap, a static split by exact headroom)
# over the oracle. The variants are not run (--variants false), so a row takes a few seconds.
# Usage: experiments/anycast-sweep.sh [extra `run anycast` flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p experiments
bin=target/release/experiments
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
printf '%-14s %4s %7s %7s %8s %8s %8s %8s %9s %9s %9s %10s %10s\n' map seed servers clients \
  anycast oracle nearest random 'any/orac' 'any/near' 'any/rand' 'stale/orac' 'split/orac'
for map in waxman transit-stub wondernetwork; do
  for seed in 1 2 3 4 5; do
    case $map in
      waxman) topo="waxman:routers=1024,links=3145,seed=$seed" ;;
      transit-stub) topo="transit-stub:nodes=600,seed=$seed" ;;
      wondernetwork) topo="matrix:data/latency/wondernetwork-2018-242cities-rtt-ms.csv" ;;
    esac
    for servers in 4 8; do
      for clients in 40 128; do
        "$bin" run anycast --topology "$topo" --seed "$seed" --servers "$servers" \
          --members "$clients" --variants false --out "$out/run" "$@" > "$out/table"
        awk -v map="$map" -v seed="$seed" -v k="$servers" -v n="$clients" '
          $1 == "random" { r = $2 } $1 == "nearest" { ne = $2 }
          $1 == "anycast" && NF == 3 { a = $2 } $1 == "oracle" && NF == 3 { o = $2 }
          /^oracle informed/ { st = $(NF - 1) } /^static split/ { sp = $(NF - 1) }
          END { printf "%-14s %4s %7s %7s %8.3f %8.3f %8.3f %8.3f %9.3f %9.3f %9.3f %10.3f %10.3f\n",
                map, seed, k, n, a, o, ne, r, a / o, a / ne, a / r, st / o, sp / o }' "$out/table"
      done
    done
  done
done
