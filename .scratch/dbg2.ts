import { readFileSync } from 'node:fs';
import { decodeImage } from '../src/data/index.js';
import { segmentDigits } from '../src/preprocess/index.js';
import { openSession, readOnnxModel, digitBatch, describeLogits } from '../src/runtime/index.js';
const { bytes, signature } = await readOnnxModel('models/lenet5-relu-mnist.onnx');
const session = await openSession(bytes, { ep: 'cpu' });
for (const f of process.argv.slice(2)) {
  const image = await decodeImage(readFileSync(f));
  const r = segmentDigits(image);
  const { data } = await session.run(digitBatch(r, [1, 28, 28]), [r.candidates.length, 1, 28, 28]);
  console.log(f, image.width, image.height, 'pieces', r.pieces, 'skip', r.skipCost.join(','), 'ignored', r.ignored);
  r.candidates.forEach((c, i) => { const d = describeLogits(data.subarray(i * 10, i * 10 + 10), signature.labels); console.log(`  ${c.from}-${c.to} cost ${c.cost.toFixed(2)} box ${JSON.stringify(c.box)} -> ${d.class} ${d.top[0]!.probability.toFixed(3)}`); });
}
await session.release();
