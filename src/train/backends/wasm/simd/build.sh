#!/usr/bin/env bash
# Builds single-channel-conv.wasm from single-channel-conv.c (needs Debian's clang and lld: apt-get install clang
# lld) and checks that the module uses no stack and has no data: it works in tfjs-backend-wasm's memory, where
# clang's stack (at the bottom of memory) would overwrite the backend's own data.
set -euo pipefail
cd "$(dirname "$0")"
clang --target=wasm32 -O3 -msimd128 -nostdlib -ffreestanding -Wall -Wextra -Werror -c single-channel-conv.c \
  -o /tmp/single-channel-conv.o
wasm-ld --no-entry --import-memory -z stack-size=0 --strip-all /tmp/single-channel-conv.o -o single-channel-conv.wasm
npx --yes -p wabt wasm2wat single-channel-conv.wasm -o /tmp/single-channel-conv.wat
if grep -qE 'global\.(get|set)|\(data ' /tmp/single-channel-conv.wat; then
  echo "single-channel-conv.wasm uses the stack or has data: it must not (see the header of single-channel-conv.c)" >&2
  exit 1
fi
echo "built $(pwd)/single-channel-conv.wasm ($(wc -c < single-channel-conv.wasm) bytes)"
