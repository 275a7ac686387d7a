/**
 * Shared memory between a session's two threads (worker-session.ts): batches and their logits travel through
 * slots of shared memory, and the threads signal each other with Atomics on a control word instead of messages.
 * A message between threads costs a wake-up of the other thread's event loop, which on small virtual machines costs
 * more than the inference of a small batch (BENCHMARKS.md, serving); an Atomics notify is a single futex wake.
 *
 * Control words: the number of runs submitted and the number completed. The submitting side stops the thread by
 * setting the submitted count to STOPPED: that is the word the thread sleeps on, so the signal cannot be missed.
 * Run `seq` uses slot `seq % SLOTS`. A slot is a header of Int32s (the float count, the rank, the dims) followed by
 * the floats; the submitting thread writes the input there and the worker overwrites it with the output. A side that
 * needs a bigger slot allocates one and sends it over the channel before it publishes the count; the other side
 * drains the channel before it reads a slot. Errors travel over the channel too.
 */
import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';

export const SLOTS = 2;
export const SUBMITTED = 0;
export const COMPLETED = 1;
export const STOPPED = -1;

const HEADER_INTS = 16;
const HEADER_BYTES = HEADER_INTS * 4;
const MAX_RANK = HEADER_INTS - 2;

export type ChannelMessage =
  | { type: 'slot'; index: number; buffer: SharedArrayBuffer }
  | { type: 'error'; seq: number; message: string; code: string };

export function createControl(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(2 * 4));
}

export function createSlot(floats: number): SharedArrayBuffer {
  return new SharedArrayBuffer(HEADER_BYTES + floats * 4);
}

/**
 * Writes `data` laid out as `dims` into slot `index`, first replacing the slot (and telling the other side) when
 * it is too small.
 */
export function writeSlot(
  slots: SharedArrayBuffer[],
  index: number,
  port: MessagePort,
  data: Float32Array,
  dims: number[],
): void {
  if (dims.length > MAX_RANK) throw new RangeError(`tensors of rank ${dims.length} are not supported`);
  let slot = slots[index]!;
  if (HEADER_BYTES + data.length * 4 > slot.byteLength) {
    // Headroom, so that a growing batch size does not reallocate every time.
    slot = createSlot(Math.ceil(data.length * 1.5));
    slots[index] = slot;
    port.postMessage({ type: 'slot', index, buffer: slot } satisfies ChannelMessage);
  }
  const header = new Int32Array(slot, 0, HEADER_INTS);
  header[0] = data.length;
  header[1] = dims.length;
  header.set(dims, 2);
  new Float32Array(slot, HEADER_BYTES, data.length).set(data);
}

/** The tensor in slot `index`, copied out of shared memory. */
export function readSlot(slots: SharedArrayBuffer[], index: number): { data: Float32Array; dims: number[] } {
  const slot = slots[index]!;
  const header = new Int32Array(slot, 0, HEADER_INTS);
  const dims = Array.from(header.subarray(2, 2 + header[1]!));
  return { data: new Float32Array(slot, HEADER_BYTES, header[0]).slice(), dims };
}

/** Applies the other side's slot replacements and adds its errors to `errors`, by run number. */
export function drainChannel(
  port: MessagePort,
  slots: SharedArrayBuffer[],
  errors?: Map<number, { message: string; code: string }>,
): void {
  for (let received = receiveMessageOnPort(port); received; received = receiveMessageOnPort(port)) {
    const message = received.message as ChannelMessage;
    if (message.type === 'slot') slots[message.index] = message.buffer;
    else errors?.set(message.seq, message);
  }
}
