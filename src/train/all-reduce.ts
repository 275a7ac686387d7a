/**
 * A barrier and an all-reduce (sum) over shared memory, for replicas (the training thread and its replica threads)
 * that must agree in the middle of a step: synchronised batch norm sums its per-channel statistics and gradient sums
 * over the whole batch (as PyTorch's SyncBatchNorm all-reduces them across processes), and every step ends with each
 * replica's gradient row written before any replica sums the rows.
 *
 * Every replica writes its values to its own row of a shared array, waits for the others, then sums the rows in
 * replica order 0..N-1: the same operations in the same order on every thread, so every replica gets the same
 * bits, and a fixed N gives the same result run after run.
 */

/** Int32 slots of the control array. */
const ARRIVED = 0;
const GENERATION = 1;
const ABORTED = 2;
const CONTROL_INTS = 4;

/** How long one wait lasts before the abort flag is looked at again (ms). */
const WAIT_SLICE_MS = 200;

/** Thrown on a replica whose group was aborted (another replica failed) while it waited. */
export class GroupAborted extends Error {
  constructor() {
    super('another training replica failed');
  }
}

/** The shared memory of a group: the control ints and two sets of one row of `width` floats per replica. */
export interface ReduceBuffers {
  control: SharedArrayBuffer;
  rows: SharedArrayBuffer;
  width: number;
}

export function createReduceBuffers(replicas: number, width: number): ReduceBuffers {
  return {
    control: new SharedArrayBuffer(CONTROL_INTS * Int32Array.BYTES_PER_ELEMENT),
    rows: new SharedArrayBuffer(2 * replicas * width * Float32Array.BYTES_PER_ELEMENT),
    width,
  };
}

/** Tells every waiting replica to stop (they throw GroupAborted). Callable from any thread. */
export function abortGroup(buffers: ReduceBuffers): void {
  const control = new Int32Array(buffers.control);
  Atomics.store(control, ABORTED, 1);
  Atomics.notify(control, GENERATION);
}

/** One replica's side of the group: `index` of `count` taking part in the current step. */
export interface ReduceMember {
  /**
   * Sums `values` (at most the buffers' width) over the `count` replicas, in replica order; returns a new array.
   * @throws GroupAborted when the group is aborted while waiting.
   */
  allReduce(values: Float32Array): Float32Array;
  /**
   * Waits until every one of the `count` replicas has called it.
   * @throws GroupAborted when the group is aborted while waiting.
   */
  barrier(): void;
  /**
   * As `barrier`, without blocking this thread's event loop while it waits (Atomics.waitAsync): the training thread
   * waits so, so that it sees a replica thread's error or exit and aborts the group.
   * @throws GroupAborted when the group is aborted while waiting.
   */
  barrierAsync(): Promise<void>;
}

export interface MemberOptions {
  /**
   * Looked at between waits of WAIT_SLICE_MS: false when a replica the member waits for can no longer arrive (its
   * thread is gone); the member then aborts the group. For a thread that waits blocked, so that cannot hear of a
   * thread's exit any other way.
   */
  peersAlive?: () => boolean;
}

/**
 * Replica `index` of the `count` taking part in one step. Every member of a step must make the same all-reduces, and
 * a step's members are made after every member of the previous step has finished (the caller waits for them).
 */
export function reduceMember(
  buffers: ReduceBuffers,
  index: number,
  count: number,
  { peersAlive }: MemberOptions = {},
): ReduceMember {
  const control = new Int32Array(buffers.control);
  const rows = new Float32Array(buffers.rows);
  const { width } = buffers;
  const setSize = (rows.length / 2) | 0;
  let set = 0;

  /**
   * Generation-counting barrier: the last to arrive resets the count and opens the next generation. Returns the
   * generation to wait out, or undefined when this member was the last.
   */
  const arrive = (): number | undefined => {
    const generation = Atomics.load(control, GENERATION);
    if (Atomics.add(control, ARRIVED, 1) === count - 1) {
      Atomics.store(control, ARRIVED, 0);
      Atomics.add(control, GENERATION, 1);
      Atomics.notify(control, GENERATION);
      return undefined;
    }
    return generation;
  };
  /** True once `generation` has passed; throws when the group was aborted (or, seen now, a peer is gone). */
  const passed = (generation: number, waited: boolean): boolean => {
    if (Atomics.load(control, GENERATION) !== generation) return true;
    if (Atomics.load(control, ABORTED) !== 0) throw new GroupAborted();
    if (waited && peersAlive && !peersAlive()) {
      abortGroup(buffers);
      throw new GroupAborted();
    }
    return false;
  };
  const barrier = () => {
    const generation = arrive();
    if (generation === undefined) return;
    for (let waited = false; !passed(generation, waited); waited = true) {
      Atomics.wait(control, GENERATION, generation, WAIT_SLICE_MS);
    }
  };

  return {
    barrier,
    async barrierAsync() {
      const generation = arrive();
      if (generation === undefined) return;
      for (let waited = false; !passed(generation, waited); waited = true) {
        const { async, value } = Atomics.waitAsync(control, GENERATION, generation, WAIT_SLICE_MS);
        if (async) await value;
      }
    },
    allReduce(values) {
      if (values.length > width) throw new RangeError(`allReduce: ${values.length} values, at most ${width}`);
      if (count === 1) return values.slice();
      const base = set * setSize;
      set ^= 1;
      rows.set(values, base + index * width);
      barrier(); // every row written
      const sum = rows.slice(base, base + values.length);
      for (let r = 1; r < count; r++) {
        const row = base + r * width;
        for (let i = 0; i < values.length; i++) sum[i]! += rows[row + i]!;
      }
      return sum;
    },
  };
}
