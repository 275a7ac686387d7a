/** Accuracy of a tfjs network on a split, in inference mode. */
import { iterateBatches, type Split } from '../data/index.js';
import type { Network } from './network.js';
import { countCorrect } from './step.js';

/**
 * Lets timers, I/O and signal handlers run. tfjs's wasm and cpu backends resolve `data()` as a microtask, so a
 * loop of steps that awaits only them never returns to the event loop (Ctrl-C would wait for the whole run).
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Fraction of `split` the network classifies correctly. `resize` as for training (AlexNet's 224). Between
 * batches it yields to the event loop and asks `shouldStop`; when that says yes it resolves to undefined.
 */
export async function evaluateAccuracy(
  network: Network,
  split: Split,
  options: { batchSize?: number; resize?: number; shouldStop?: () => boolean } = {},
): Promise<number | undefined> {
  let correct = 0;
  for (const batch of iterateBatches(split, { batchSize: options.batchSize ?? 500, resize: options.resize })) {
    await yieldToEventLoop();
    if (options.shouldStop?.()) return undefined;
    const hits = countCorrect(network, batch);
    correct += (await hits.data())[0]!;
    hits.dispose();
  }
  return correct / split.count;
}
