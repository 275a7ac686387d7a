#!/bin/bash
# usage: sweep.sh "ENV=.. ENV=.." ...
for cfg in "$@"; do
  a=$(env $cfg npx tsx .scratch/strings.ts 11 3000 200 4 30 2>/dev/null | head -1 | node -pe 'JSON.parse(require("fs").readFileSync(0)).exact.toFixed(3)')
  b=$(env $cfg npx tsx .scratch/strings.ts 12 5000 200 -6 24 2>/dev/null | head -1 | node -pe 'JSON.parse(require("fs").readFileSync(0)).exact.toFixed(3)')
  c=$(env $cfg LEN=1 npx tsx .scratch/strings.ts 13 7000 300 4 30 2>/dev/null | head -1 | node -pe 'JSON.parse(require("fs").readFileSync(0)).exact.toFixed(3)')
  echo "$cfg | spaced $a touching $b single $c"
done
