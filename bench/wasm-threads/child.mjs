// One benchmark process of bench/wasm-threads/driver.mjs: node child.mjs <st|mt1|mt2> <reps> <alexBatch> [ops,comma,separated]
// st  = stock tfjs-backend-wasm init (tfjs-backend-wasm-simd.wasm, no threads)
// mtN = threaded build (tfjs-backend-wasm-threaded-simd.wasm) started by wasm-threaded-node.mjs with N threads
// Prints one JSON line: per op the ms of each timed call and the sha1 of each call's output bytes.
import { createHash } from 'node:crypto';
import { loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmTrainingKernels } from '../../dist/train/backends/wasm/register-kernels.js';
import { useThreadedWasm } from './threaded-wasm.mjs';

const [variant, repsArg, alexArg, opsArg] = process.argv.slice(2);
const reps = Number(repsArg ?? 3);
const NA = Number(alexArg ?? 64);
const load0 = loadavg()[0];

registerWasmTrainingKernels(); // cnnx's Conv2DBackpropFilter (transposed conv via XNNPACK Conv2D) etc.
let info;
if (variant === 'st') {
  const ev = ['uncaughtException', 'unhandledRejection'];
  const before = new Set(ev.flatMap((e) => process.listeners(e)));
  if (!(await tf.setBackend('wasm'))) throw new Error('stock wasm failed');
  for (const e of ev) for (const l of process.listeners(e)) if (!before.has(l)) process.removeListener(e, l);
  info = { threads: 1, threaded: 'PThread' in tf.backend().wasm };
} else {
  info = await useThreadedWasm(Number(variant.slice(2)));
}

const CONVS = [
  { name: `alex1 [${NA},224,224,1] 11x11x1x96 s4 p1`, x: [NA, 224, 224, 1], f: [11, 11, 1, 96], s: 4, p: 1 },
  { name: `alex2 [${NA},26,26,96] 5x5x96x256 p2`, x: [NA, 26, 26, 96], f: [5, 5, 96, 256], s: 1, p: 2 },
  { name: `alex3 [${NA},12,12,256] 3x3x256x384 p1`, x: [NA, 12, 12, 256], f: [3, 3, 256, 384], s: 1, p: 1 },
  { name: 'lenet1 [256,28,28,1] 5x5x1x6 p2', x: [256, 28, 28, 1], f: [5, 5, 1, 6], s: 1, p: 2 },
  { name: 'lenet2 [256,14,14,6] 5x5x6x16 valid', x: [256, 14, 14, 6], f: [5, 5, 6, 16], s: 1, p: 'valid' },
];
const wanted = opsArg ? opsArg.split(',') : null;

const results = [];
let seed = 1;
for (const c of CONVS) {
  const x = tf.randomUniform(c.x, -1, 1, 'float32', seed++);
  const w = tf.randomUniform(c.f, -0.1, 0.1, 'float32', seed++);
  const y0 = tf.conv2d(x, w, c.s, c.p);
  const dy = tf.randomUniform(y0.shape, -1, 1, 'float32', seed++);
  y0.dispose();
  const ops = {
    fwd: () => tf.conv2d(x, w, c.s, c.p),
    // filter gradient = cnnx's "transposed" conv: x as [C,H,W,B] * dy as [OH,OW,B,O] through XNNPACK Conv2D
    dW: () =>
      tf
        .engine()
        .runKernel('Conv2DBackpropFilter', { x, dy }, { strides: c.s, pad: c.p, dataFormat: 'NHWC', filterShape: c.f }),
  };
  for (const [op, run] of Object.entries(ops)) {
    const key = `${c.name.split(' ')[0]}.${op}`;
    if (wanted && !wanted.includes(key)) continue;
    run().dispose(); // warm-up (heap growth, XNNPACK operator creation)
    const ms = [];
    const cpu = [];
    const sha = [];
    for (let i = 0; i < reps; i++) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const out = run();
      ms.push(performance.now() - t0);
      const c = process.cpuUsage(c0);
      cpu.push((c.user + c.system) / 1000); // ms of CPU over all threads of this process
      const data = out.dataSync();
      sha.push(
        createHash('sha1')
          .update(Buffer.from(data.buffer, data.byteOffset, data.byteLength))
          .digest('hex')
          .slice(0, 12),
      );
      out.dispose();
    }
    results.push({ key, name: c.name, op, ms, cpu, sha });
  }
  tf.dispose([x, w, dy]);
}
console.log(JSON.stringify({ variant, info, load0, load1: loadavg()[0], results }));
tf.removeBackend('wasm'); // terminates pthread workers
process.exit(0);
