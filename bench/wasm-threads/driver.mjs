// `npm run build`, then `node bench/wasm-threads/driver.mjs [rounds 4] [calls 3] [alexnet batch 64]`:
// tfjs-backend-wasm's stock single-thread build (st) against its threaded XNNPACK build on 1 and 2 threads (mt1,
// mt2; started by threaded-wasm.mjs, which tfjs does not do in Node), on AlexNet's and LeNet's convolutions: the
// forward conv and cnnx's filter gradient. One process per variant (a process holds one wasm module), in rotated
// order each round; prints median ms per call and whether every output has the same bits across variants.
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [rounds = 4, calls = 3, alexBatch = 64] = process.argv.slice(2).map(Number);
const child = join(dirname(fileURLToPath(import.meta.url)), 'child.mjs');
const variants = ['st', 'mt1', 'mt2'];
const runs = [];
for (let r = 0; r < rounds; r++) {
  for (let i = 0; i < variants.length; i++) {
    const variant = variants[(i + r) % variants.length];
    const out = execFileSync('node', [child, variant, String(calls), String(alexBatch)], {
      encoding: 'utf8',
      maxBuffer: 1 << 26,
    });
    runs.push(JSON.parse(out.split('\n').find((line) => line.startsWith('{'))));
    process.stderr.write(`round ${r + 1} ${variant} done\n`);
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};
const byKey = {};
for (const run of runs) {
  for (const result of run.results) {
    const entry = (byKey[result.key] ??= { name: result.name, op: result.op, ms: {}, sha: new Set() });
    (entry.ms[run.variant] ??= []).push(...result.ms);
    result.sha.forEach((sha) => entry.sha.add(sha));
  }
}
console.log('| shape | op | st | mt1 | mt2 | mt1/mt2 | bits |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
for (const { name, op, ms, sha } of Object.values(byKey)) {
  const [st, mt1, mt2] = variants.map((v) => median(ms[v] ?? [NaN]));
  const bits = sha.size === 1 ? 'identical' : `${sha.size} different`;
  console.log(
    `| ${name} | ${op} | ${st.toFixed(1)} | ${mt1.toFixed(1)} | ${mt2.toFixed(1)} | ${(mt1 / mt2).toFixed(2)}x | ${bits} |`,
  );
}
