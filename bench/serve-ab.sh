#!/usr/bin/env bash
# bench/serve-ab.sh ROUNDS BODY CONFIG... : A/B rounds of `cnnx serve` configurations under wrk (32 connections,
# 1 s warm-up, 4 s measured), alternating the configurations round by round, on a drifting machine. Prints req/s,
# p99 and the server's CPU per request by thread (from /proc; E = the event loop). Linux, wrk, npm run build first.
#   BODY:   json1 | bin1 | bin64  (one MNIST-shaped image as KServe v2 JSON, or the binary tensor extension)
#   CONFIG: extra `cnnx serve` flags in one word, commas for spaces, e.g. --instances=1 or --threads=2,--no-spin;
#           "-" for none; DIR=<checkout> runs another build of cnnx (e.g. a git worktree of an earlier commit).
# Example: bench/serve-ab.sh 3 bin64 --instances=1 --instances=2
set -euo pipefail
rounds=$1 body=$2; shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
port=${BENCH_PORT:-8811}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
node --input-type=module - "$work" <<'JS'
import { writeFileSync } from 'node:fs';
const dir = process.argv[2];
for (const [name, count] of [['bin1', 1], ['bin64', 64]]) {
  const values = new Float32Array(count * 784).map((_, i) => (i % 17) / 17);
  const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [count, 1, 28, 28], datatype: 'FP32',
    parameters: { binary_data_size: values.byteLength } }], parameters: { binary_data_output: true } }));
  writeFileSync(`${dir}/${name}`, Buffer.concat([header, Buffer.from(values.buffer)]));
  writeFileSync(`${dir}/${name}.lua`, `local f = io.open("${dir}/${name}", "rb"); wrk.body = f:read("*all"); f:close()\n` +
    `wrk.method = "POST"\nwrk.headers["inference-header-content-length"] = "${header.length}"\n`);
}
const data = Array.from({ length: 784 }, (_, i) => Math.round(((i % 17) / 17) * 1e4) / 1e4);
writeFileSync(`${dir}/json1`, JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data }] }));
writeFileSync(`${dir}/json1.lua`, `local f = io.open("${dir}/json1", "rb"); wrk.body = f:read("*all"); f:close()\n` +
  `wrk.method = "POST"\nwrk.headers["content-type"] = "application/json"\n`);
JS
ticks() { for t in /proc/"$1"/task/*; do echo "$(basename "$t") $(awk '{print $14+$15}' "$t/stat" 2>/dev/null || echo 0)"; done; }
url=http://127.0.0.1:$port/v2/models/lenet5-relu-mnist/infer
for r in $(seq "$rounds"); do
  for config in "$@"; do
    dir=$root flags=()
    case $config in DIR=*) dir=${config#DIR=} ;; -) ;; *) IFS=, read -r -a flags <<<"$config" ;; esac
    node "$dir/bin/cnnx.js" serve --model "$root/models/lenet5-relu-mnist.onnx" --port "$port" --ep cpu --no-watch \
      "${flags[@]}" >"$work/server.log" 2>&1 &
    server=$!
    until curl -sf "http://127.0.0.1:$port/v2/health/ready" >/dev/null; do sleep 0.2; done
    wrk -t1 -c32 -d1s -s "$work/$body.lua" "$url" >/dev/null
    ticks "$server" >"$work/t0"
    out=$(wrk -t1 -c32 -d4s --latency -s "$work/$body.lua" "$url")
    ticks "$server" >"$work/t1"
    n=$(awk '/requests in/{print $1}' <<<"$out")
    cpu=$(join "$work/t0" "$work/t1" | awk -v n="$n" -v pid="$server" \
      '{d=$3-$2; if (d>20) printf "%s %.0fus/req ", ($1==pid?"E":"T"), d*10000/n}')
    echo "round $r [$config] $(awk '/Requests\/sec/{print $2}' <<<"$out") req/s, p99 $(awk '/ 99%/{print $2}' <<<"$out") | $cpu"
    kill "$server"; wait "$server" 2>/dev/null || true
  done
done
