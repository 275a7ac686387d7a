#!/usr/bin/env bash
# Builds kernels.wasm from kernels.c (needs Debian's clang and lld: apt-get install clang
# lld) and checks that the module uses no stack and has no data: it works in tfjs-backend-wasm's memory, where
# clang's stack (at the bottom of memory) would overwrite the backend's own data.
set -euo pipefail
cd "$(dirname "$0")"
clang --target=wasm32 -O3 -msimd128 -nostdlib -ffreestanding -Wall -Wextra -Werror -c kernels.c \
  -o /tmp/kernels.o
wasm-ld --no-entry --import-memory -z stack-size=0 --strip-all /tmp/kernels.o -o kernels.wasm
npx --yes -p wabt wasm2wat kernels.wasm -o /tmp/kernels.wat
if grep -qE 'global\.(get|set)|\(data ' /tmp/kernels.wat; then
  echo "kernels.wasm uses the stack or has data: it must not (see the header of kernels.c)" >&2
  exit 1
fi
echo "built $(pwd)/kernels.wasm ($(wc -c < kernels.wasm) bytes)"
