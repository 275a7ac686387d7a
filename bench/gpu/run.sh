#!/usr/bin/env bash
# The GPU benchmark, one device call (prepared by bench/gpu/build.sh; run through .gpu/run-on-device.sh, which
# puts node on PATH and points Vulkan at the NVIDIA driver). PyTorch eager and tfjs WebGPU training on the same card
# in the same call, then onnxruntime-node's WebGPU, CPU and CUDA providers. Figures go to $OUT as JSON lines and a
# Markdown summary; every part has its own time limit so one slow part cannot eat the others.
set -uo pipefail
out=${OUT:-bench/scratch/gpu-out}
data=dist/gpu/mnist
mkdir -p "$out"
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; nproc; } 2>&1 | tee "$out/machine.txt"
quick=${GPU_QUICK:+--quick}
timeout 120 python3 bench/gpu/torch_baseline.py --data "$data" $quick 2>"$out/torch.err" | tee "$out/torch.jsonl"
timeout 240 node dist/gpu/device.mjs train --data "$data" $quick 2>"$out/train.err" | tee "$out/train.jsonl"
timeout 180 node dist/gpu/device.mjs infer --data "$data" $quick 2>"$out/infer.err" | tee "$out/infer.jsonl"
node dist/gpu/device.mjs summary --data "$out" | tee "$out/summary.md"
tail -n 5 "$out"/*.err
