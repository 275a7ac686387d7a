import { readFileSync } from 'node:fs';
import { decodeImage } from '../src/data/index.js';
import { openSession, readOnnxModel, readDigitString } from '../src/runtime/index.js';
const { bytes, signature } = await readOnnxModel('models/lenet5-relu-mnist.onnx');
const session = await openSession(bytes, { ep: 'cpu' });
const root = '/tmp/h1-scratch/';
let total = 0, ok = 0;
for (const set of ['svg', 'mnist', 'mnist-sep', 'var', 'lines', 'forms']) {
  let t: { file: string; text: string; q?: string }[];
  try { t = JSON.parse(readFileSync(`${root}${set}-truth.json`, 'utf8')); } catch { continue; }
  let good = 0; const bad: string[] = [];
  for (const r of t) {
    if (r.q) continue;
    let text: string;
    try { const image = await decodeImage(readFileSync(root + r.file)); text = (await readDigitString(session, signature, image, 0)).text; } catch (e) { text = 'ERR ' + (e as Error).message.slice(0, 40); }
    if (text === r.text) good++; else bad.push(`${r.file}:${r.text}->${text}`);
  }
  total += t.filter((r) => !r.q).length; ok += good;
  console.log(set, good, '/', t.filter((r) => !r.q).length, process.env.V ? bad.join('  ') : '');
}
console.log('all', ok, '/', total);
await session.release();
