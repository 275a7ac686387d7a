import { loadDataset } from '../src/data/index.js';
const mnist = await loadDataset('mnist');
console.log(mnist.test.pixels.constructor.name, mnist.test.pixels.slice(1011*784+300,1011*784+320));
for (const i of [1011,1012]) { const px = mnist.test.pixels.subarray(i * 784, (i + 1) * 784);
let x0 = 28, x1 = -1; for (let r = 0; r < 28; r++) for (let c = 0; c < 28; c++) if (px[r * 28 + c]! > 40) { x0 = Math.min(x0, c); x1 = Math.max(x1, c); } console.log(i, mnist.test.labels[i], x0, x1); }
