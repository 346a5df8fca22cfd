#!/usr/bin/env bash
# Does watching the daemon slow it down? One private coprocd serving the MLP, closed-loop load
# from coproc-bench, in rounds that alternate: no observer, then Prometheus-style scraping of
# /metrics plus coproc-stat --json every INTERVAL seconds. Prints each round and the ratio of the
# medians (scraped / quiet) for throughput and p99, measured in the same run. Then, with no load,
# the daemon's own CPU time per scrape and per coproc-stat reading (from /proc/PID/stat over
# 2000 of each), which separates the daemon's cost from the observers' own processes.
#
#   bench/transport/scrape_overhead.sh [ROUNDS=5] [INTERVAL=0.1] [ROUND_MS=3000]
set -euo pipefail
rounds=${1:-5}
interval=${2:-0.1}
round_ms=${3:-3000}
bin=$(cd "$(dirname "$0")/../build/bin" && pwd)
models=$(cd "$(dirname "$0")/../build/models" && pwd)
work=$(mktemp -d /tmp/coproc-scrape-XXXXXX)
port_file=$work/port
cleanup() {
  [ -n "${scraper:-}" ] && kill "$scraper" 2>/dev/null || true
  [ -n "${daemon:-}" ] && kill -TERM "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$bin/coprocd" --socket "$work/s.sock" --http-listen 127.0.0.1:0 --log-level info \
  --model mlp="$models/mlp.onnx" 2>"$work/log" &
daemon=$!
for _ in $(seq 100); do
  grep -o 'on 127.0.0.1:[0-9]*' "$work/log" 2>/dev/null | head -1 | cut -d: -f2 > "$port_file" || true
  [ -s "$port_file" ] && grep -q ready "$work/log" && break
  sleep 0.1
done
port=$(cat "$port_file")
[ -n "$port" ] || { echo "coprocd did not start"; cat "$work/log"; exit 1; }

scrape_loop() {
  while :; do
    curl -fs "http://127.0.0.1:$port/metrics" >/dev/null
    "$bin/coproc-stat" --socket "$work/s.sock" --json >/dev/null
    sleep "$interval"
  done
}

round() {  # prints "throughput p99_ns"
  "$bin/coproc-bench" load --socket "$work/s.sock" --model mlp --clients 2 --in-flight 4 \
    --warmup-ms 300 --duration-ms "$round_ms" --json |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["runs"][0]; print(r["throughput_rps"], r["p99_ns"])'
}

quiet=() scraped=()
for i in $(seq "$rounds"); do
  q=$(round)
  scrape_loop & scraper=$!
  s=$(round)
  kill "$scraper"; wait "$scraper" 2>/dev/null || true; scraper=
  echo "round $i  quiet: $q   scraped: $s"
  quiet+=("$q") scraped+=("$s")
done
cpu_ticks() { awk '{print $14 + $15}' "/proc/$daemon/stat"; }
tick_us=$((1000000 / $(getconf CLK_TCK)))
urls=()
for _ in $(seq 2000); do urls+=("http://127.0.0.1:$port/metrics" -o /dev/null); done
before=$(cpu_ticks)
curl -fs "${urls[@]}"
scrape_us=$(( ($(cpu_ticks) - before) * tick_us / 2000 ))
before=$(cpu_ticks)
for _ in $(seq 2000); do "$bin/coproc-stat" --socket "$work/s.sock" --json >/dev/null; done
stat_us=$(( ($(cpu_ticks) - before) * tick_us / 2000 ))
echo "daemon CPU per /metrics scrape: ${scrape_us} us; per coproc-stat reading: ${stat_us} us (2000 each, no load)"

python3 - "$interval" "${quiet[@]}" -- "${scraped[@]}" <<'PY'
import statistics, sys
args = sys.argv[2:]
cut = args.index("--")
quiet = [tuple(map(float, a.split())) for a in args[:cut]]
scraped = [tuple(map(float, a.split())) for a in args[cut + 1:]]
med = lambda rows, k: statistics.median(r[k] for r in rows)
print(f"scraping /metrics + coproc-stat --json every {sys.argv[1]} s, medians of {len(quiet)} rounds:")
print(f"  throughput  quiet {med(quiet,0):.0f} req/s  scraped {med(scraped,0):.0f} req/s  ratio {med(scraped,0)/med(quiet,0):.3f}")
print(f"  p99         quiet {med(quiet,1)/1e3:.1f} us  scraped {med(scraped,1)/1e3:.1f} us  ratio {med(scraped,1)/med(quiet,1):.3f}")
PY
