/** The shared-memory slots between a session's two threads: what one side writes, the other reads exactly. */
import { MessageChannel } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { createSlot, drainChannel, readSlot, writeSlot } from '../../src/runtime/run-slots.js';

describe('run slots', () => {
  it('hands a tensor over, replacing a slot that is too small on both sides', () => {
    const { port1, port2 } = new MessageChannel();
    try {
      const ours = [createSlot(4), createSlot(4)];
      const theirs = [...ours];
      const small = theirs[1];
      const data = Float32Array.from({ length: 30 }, (_, i) => i / 7);
      writeSlot(ours, 1, port1, data, [3, 10]);
      expect(ours[1]!.byteLength).toBeGreaterThan(small!.byteLength);
      drainChannel(port2, theirs);
      expect(theirs[1]).not.toBe(small);
      expect(readSlot(theirs, 1)).toEqual({ data, dims: [3, 10] });
      // A tensor that fits reuses the slot: nothing is sent, and the shared memory shows it.
      const replaced = theirs[1];
      writeSlot(ours, 1, port1, data.subarray(0, 10), [1, 10]);
      drainChannel(port2, theirs);
      expect(theirs[1]).toBe(replaced);
      expect(readSlot(theirs, 1)).toEqual({ data: data.slice(0, 10), dims: [1, 10] });
    } finally {
      port1.close();
    }
  });

  it('carries errors by run number, and refuses a rank it cannot hold', () => {
    const { port1, port2 } = new MessageChannel();
    try {
      port1.postMessage({ type: 'error', seq: 3, message: 'bad input', code: 'INFERENCE_FAILED' });
      const errors = new Map<number, { message: string; code: string }>();
      drainChannel(port2, [], errors);
      expect(errors.get(3)).toMatchObject({ message: 'bad input', code: 'INFERENCE_FAILED' });
      expect(() => writeSlot([createSlot(1)], 0, port1, new Float32Array(1), new Array(15).fill(1))).toThrow(/rank/);
    } finally {
      port1.close();
    }
  });
});
