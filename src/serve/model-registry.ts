/**
 * The models a server holds, by name (file name without `.onnx`). Loading checks the file (size limit, external
 * data, signature, optional sha256 pin) before ONNX Runtime sees it. Reloading swaps atomically: new requests go
 * to the new session at once, requests already queued finish on the old one, which is released after; a bad new
 * file leaves the old model serving and is reported. Loads of one name run one after another, and a change seen
 * while a reload runs is loaded after it, so the server ends up serving what is on disk.
 */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, statSync, watch, type FSWatcher, type Stats } from 'node:fs';
import { lstat, readdir, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, dirname, extname, join } from 'node:path';
import { setImmediate, setTimeout as sleep } from 'node:timers/promises';
import { CnnxError, messageOf, whyUnreadable } from '../common/index.js';
import {
  instancesOf,
  openSession,
  openSessionInWorker,
  readModelFile,
  readOnnxModel,
  type EpName,
  type ModelSession,
  type ModelSignature,
} from '../runtime/index.js';
import { Batcher } from './batcher.js';
import { MODEL_VERSION } from './inference.js';
import { ModelStats } from './model-stats.js';

/** Nice value of each model's inference thread: the HTTP thread, which every request waits on, goes first. */
const INFERENCE_THREAD_NICE = 5;

export interface RegistryOptions {
  ep: EpName;
  /** ONNX Runtime threads per session; default half the cores shared among a model's instances. */
  threads?: number;
  spinning?: boolean;
  /** Run each model's inference on its own worker thread (true) or on the event loop. */
  inferenceWorker?: boolean;
  /**
   * Sessions per model, each on its own worker thread (Triton's instance_group count): batches run side by side on
   * the cores the HTTP work leaves, at the cost of one more copy of the model each. Default: 2 with two cores or
   * more and a model file of at most 64 MiB, else 1.
   */
  instances?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  maxModelBytes?: number;
  /** sha256 a model file must have, by model name. */
  pins?: Record<string, string>;
  maxBatch: number;
  /** Images at which a gathering batch goes at once (Batcher's `preferredBatch`). */
  preferredBatch?: number;
  maxQueueDelayMs: number;
  maxQueue: number;
  /** An inference that takes longer is answered 503 TIMEOUT. */
  timeoutMs?: number;
  log: (message: string) => void;
  onBatch?: (model: string, size: number) => void;
}

export interface LoadedModel {
  name: string;
  file: string;
  /** The bytes the session was opened from: what the page downloads, whatever the file on disk holds now. */
  bytes: Uint8Array;
  sha256: string;
  signature: ModelSignature;
  session: ModelSession;
  /** Sessions behind `session`, each on its own thread (Triton's instance_group count). */
  instances: number;
  batcher: Batcher;
  /** Statistics of the name, kept across reloads. */
  stats: ModelStats;
  loadedAt: Date;
}

/** The model files of `dir` (or `only`) that are symbolic links. */
function linkedModels(dir: string, only?: string): string[] {
  try {
    const names = only !== undefined ? [only] : readdirSync(dir).filter(isModelFileName);
    return names.filter((name) => lstatSync(join(dir, name), { throwIfNoEntry: false })?.isSymbolicLink());
  } catch {
    return []; // the folder went away: the check for a folder made again takes over
  }
}

/** Wait after a change event before reading the file: editors and `cp` write in several steps. */
const SETTLE_MS = 300;
/** How often a watched folder is checked for having been removed and made again. */
const REWATCH_MS = 2000;

/** Bytes hashed between two turns of the event loop: about 4 ms of SHA-256 here. */
const HASH_CHUNK_BYTES = 4 * 2 ** 20;

/**
 * The SHA-256 of a model's bytes, in hex, 4 MiB at a time with a turn of the event loop between: a 300 MB model
 * hashed at once would hold every request, health checks included, for about 0.3 s (webcrypto's digest copies the
 * bytes on the calling thread first, which holds it nearly as long).
 */
async function sha256Of(bytes: Uint8Array): Promise<string> {
  const hash = createHash('sha256');
  for (let at = 0; at < bytes.length; at += HASH_CHUNK_BYTES) {
    hash.update(bytes.subarray(at, at + HASH_CHUNK_BYTES));
    if (at + HASH_CHUNK_BYTES < bytes.length) await setImmediate();
  }
  return hash.digest('hex');
}

function modelNameOf(file: string): string {
  return basename(file, extname(file));
}

/**
 * Whether a file found in a served folder is a model: a `.onnx` name in any case (`MODEL.ONNX`, as some systems
 * write it) that is not hidden (editors and copy tools write `.name.onnx.swp`-like temporaries, and `.onnx` or
 * `..onnx` would make the models `.onnx` and `.`).
 */
function isModelFileName(file: string): boolean {
  return file.toLowerCase().endsWith('.onnx') && !file.startsWith('.');
}

/** The model files of one served folder, one per model name: `name.onnx` before another case of it (`name.ONNX`). */
function modelFilesOf(names: readonly string[]): { files: string[]; shadowed: [string, string][] } {
  const byName = new Map<string, string>();
  const shadowed: [string, string][] = [];
  for (const file of names.filter(isModelFileName).sort()) {
    const kept = byName.get(modelNameOf(file));
    if (kept === undefined) byName.set(modelNameOf(file), file);
    else if (file.endsWith('.onnx')) {
      byName.set(modelNameOf(file), file);
      shadowed.push([kept, file]);
    } else shadowed.push([file, kept]);
  }
  return { files: [...byName.values()], shadowed };
}

/**
 * Names that the KServe v2 routes give another meaning: `GET /v2/models/stats` is every model's statistics, so a
 * model called `stats` has its metadata at `/v2/models/stats/versions/1` only.
 */
const ROUTE_NAMES = new Set(['stats']);

/** Where the log points for why a provider was not used and how to get it working. */
const PROVIDERS_HELP = 'docs/api.md, "Execution providers"';

/** `cuda, webgpu: no GPU device ...`: providers skipped for the same reason share it. */
function skippedText(session: ModelSession): string {
  const byReason = new Map<string, string[]>();
  for (const { ep, reason } of session.skipped) byReason.set(reason, [...(byReason.get(reason) ?? []), ep]);
  return [...byReason].map(([reason, eps]) => `${eps.join(', ')}: ${reason}`).join('; ');
}

/** Largest model file that gets a second instance by default (one more copy of it in memory). */
const SMALL_MODEL_BYTES = 64 * 2 ** 20;

/**
 * Two sessions for a small model on the CPU provider where there are two cores: on 2 vCPUs (Intel Xeon,
 * 2026-12-01, wrk, 32 connections) they gave +31% for 64-image binary requests, +7-8% for one image, and JSON the
 * same or better (BENCHMARKS.md, "Serving protocols"). A GPU gets one, as Triton gives one per GPU.
 */
function defaultInstances(bytes: Uint8Array, ep: string): number {
  return ep === 'cpu' && availableParallelism() >= 2 && bytes.byteLength <= SMALL_MODEL_BYTES ? 2 : 1;
}

/**
 * ONNX Runtime threads for each of `instances` sessions when not given: half the cores shared among them (at
 * least one each), so that the HTTP work keeps the other half.
 */
function defaultThreads(instances: number): number {
  return Math.max(1, Math.floor(availableParallelism() / 2 / instances));
}

/**
 * One log line for a model that is now serving: its provider and, briefly, why `auto` did not use the faster ones.
 * A reload repeats the reasons only when they changed.
 */
function readyLine(model: LoadedModel, previous: LoadedModel | undefined): string {
  const { name, file, sha256, session, instances } = model;
  const skipped = skippedText(session);
  const unchanged = previous?.session.ep === session.ep && skippedText(previous.session) === skipped;
  const why = skipped === '' || unchanged ? '' : ` (not ${skipped}; see ${PROVIDERS_HELP})`;
  const times = instances > 1 ? `, ${instances} instances` : '';
  return `model ${name} ${previous ? 'reloaded' : 'ready'} on ${session.ep}${times}${why}: ${file}, sha256 ${sha256.slice(0, 12)}…`;
}

export class ModelRegistry {
  private readonly models = new Map<string, LoadedModel>();
  /** Each watched folder's watch and its check for the folder being made again, stopped on close. */
  private readonly watchers: { close(): void }[] = [];
  /** Per name, the load or unload in progress (they never overlap, so the last one asked for wins). */
  private readonly loading = new Map<string, Promise<unknown>>();
  /** Per name, the watcher's reload in progress; `again` marks a change seen meanwhile. */
  private readonly reloading = new Map<string, { task: Promise<void>; again: boolean }>();
  private readonly stats = new Map<string, ModelStats>();
  private closed = false;
  /** Last load failure per model name, for /v2/models/{name} and logs. */
  readonly failures = new Map<string, string>();
  /** Where models come from (the model repository): folders, or one file of a folder (`only`). */
  private readonly sources: { dir: string; only?: string }[] = [];

  constructor(private readonly options: RegistryOptions) {}

  get(name: string): LoadedModel | undefined {
    return this.models.get(name);
  }

  list(): LoadedModel[] {
    return [...this.models.values()];
  }

  /** Loads a file, or every .onnx file of a directory (hidden ones left out). Throws when nothing could be loaded. */
  async loadPath(path: string): Promise<void> {
    const info = await stat(path).catch(() => {
      throw new CnnxError(`${path}: no such model file or directory`, 'MODEL_NOT_FOUND');
    });
    const names = info.isDirectory()
      ? await readdir(path).catch((error: unknown) => {
          throw new CnnxError(`${path}: cannot read (${whyUnreadable(error)})`, 'MODEL_UNREADABLE');
        })
      : [];
    const chosen = modelFilesOf(names);
    for (const [left, kept] of chosen.shadowed) {
      this.options.log(`warning: ${join(path, left)} is not served: ${join(path, kept)} names the same model`);
    }
    const files = info.isDirectory() ? chosen.files.map((f) => join(path, f)) : [path];
    if (files.length === 0) {
      // A Triton model repository (what `cnnx export --triton` writes) names a model by its folder, not its file.
      const triton = names.find((name) => statSync(join(path, name, '1', 'model.onnx'), { throwIfNoEntry: false }));
      throw new CnnxError(
        triton === undefined
          ? `${path}: no .onnx files to serve`
          : `${path}: no .onnx files to serve; it is a Triton model repository (${triton}/1/model.onnx), which cnnx does not read: serve the .onnx file that \`cnnx export --out\` wrote beside it (its name is the model's)`,
        'MODEL_NOT_FOUND',
      );
    }
    this.sources.push(info.isDirectory() ? { dir: path } : { dir: dirname(path), only: basename(path) });
    for (const file of files.sort()) {
      const other = this.models.get(modelNameOf(file))?.file;
      if (other !== undefined && other !== file) {
        const message = `${file} and ${other} both name model '${modelNameOf(file)}'; rename one (the model's name is its file's)`;
        if (!info.isDirectory()) throw new CnnxError(message, 'BAD_OPTION');
        this.options.log(`warning: ${message}; serving ${other}`);
        continue;
      }
      try {
        await this.load(file);
      } catch (error) {
        if (!info.isDirectory()) throw error;
        this.failures.set(modelNameOf(file), messageOf(error));
        // Most errors name the file; a provider's refusal does not.
        const message = messageOf(error);
        this.options.log(`not serving it: ${message.includes(file) ? message : `${file}: ${message}`}`);
      }
    }
    if (this.models.size === 0) {
      const [first] = this.failures.values();
      throw new CnnxError(
        `${path}: none of its models could be loaded${first === undefined ? '' : ` (the first: ${first})`}`,
        'MODEL_NOT_FOUND',
      );
    }
  }

  /** Statistics of a model name (created on first use, kept across reloads). */
  statsOf(name: string): ModelStats {
    let stats = this.stats.get(name);
    if (!stats) this.stats.set(name, (stats = new ModelStats()));
    return stats;
  }

  /**
   * Loads (or reloads) one file; the previous version keeps serving if this fails. Loads of the same name wait for
   * each other, so they finish in the order they were asked for.
   */
  load(file: string): Promise<LoadedModel> {
    const name = modelNameOf(file);
    return this.inOrder(name, () => this.loadNow(file, name));
  }

  /**
   * Runs `operation` on model `name` once the loads and unloads of that name asked for before it have finished, so
   * that they take effect in the order they were asked for (the last one acknowledged is what is served).
   */
  private inOrder<T>(name: string, operation: () => Promise<T>): Promise<T> {
    const previous = this.loading.get(name) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(operation);
    const settled = next.catch(() => undefined);
    this.loading.set(name, settled);
    void settled.then(() => {
      if (this.loading.get(name) === settled) this.loading.delete(name);
    });
    return next;
  }

  private async loadNow(file: string, name: string): Promise<LoadedModel> {
    const { bytes, signature } = await readOnnxModel(file, { maxBytes: this.options.maxModelBytes });
    const sha256 = await sha256Of(bytes);
    const pin = this.options.pins?.[name];
    if (pin !== undefined && pin.toLowerCase() !== sha256) {
      throw new CnnxError(`${file}: sha256 ${sha256} does not match the pinned ${pin}; refused`, 'MODEL_PIN_MISMATCH');
    }
    const imageDims = signature.inputShape.slice(1);
    const imageSize = imageDims.reduce((a, b) => a * b, 1);
    const probeBatch = signature.fixedBatch ?? 2;
    const probe = {
      data: new Float32Array(probeBatch * imageSize).map((_, i) => ((i * 7919) % 256) / 255),
      dims: [probeBatch, ...imageDims],
    };
    const { sessions, instances } = await this.openInstances(bytes, probe);
    const session = instancesOf(sessions);
    const stats = this.statsOf(name);
    // A fixed batch B pads every run to B: a preferred batch that is a multiple of B wastes nothing.
    const fixed = signature.fixedBatch;
    const preferred = this.options.preferredBatch;
    const batcher = new Batcher({
      maxBatch: this.options.maxBatch,
      preferredBatch: fixed !== undefined && preferred !== undefined ? Math.ceil(preferred / fixed) * fixed : preferred,
      maxDelayMs: this.options.maxQueueDelayMs,
      maxQueue: this.options.maxQueue,
      imageSize,
      imageDims,
      timeoutMs: this.options.timeoutMs,
      // On a worker the next batch is handed over while one runs (it waits there, not on the event loop).
      concurrency: this.options.inferenceWorker ? 2 * instances : 1,
      run: (data, dims) => session.run(data, dims, { transfer: true }),
      onBatch: (size) => this.options.onBatch?.(name, size),
      onQueued: (ns) => stats.queued(ns),
      onExecuted: (size, requests, times) => stats.executed(size, requests, times),
    });
    const loaded: LoadedModel = {
      name,
      file,
      bytes,
      sha256,
      signature,
      session,
      instances,
      batcher,
      stats,
      loadedAt: new Date(),
    };
    const previous = this.models.get(name);
    this.models.set(name, loaded);
    this.failures.delete(name);
    this.options.log(readyLine(loaded, previous));
    if (!previous && ROUTE_NAMES.has(name)) {
      this.options.log(
        `model ${name}: GET /v2/models/${name} is every model's statistics (Triton's route); this model's metadata is at /v2/models/${name}/versions/${MODEL_VERSION}`,
      );
    }
    for (const warning of signature.warnings) this.options.log(`model ${name}: ${warning}`);
    if (previous) void this.retire(previous);
    return loaded;
  }

  /**
   * The model's sessions: the first with the provider rules (`auto` tries the faster ones), the others pinned to
   * the provider it got, so that every instance runs on the same one. On a failure every session opened is
   * released and the first failure thrown.
   */
  private async openInstances(
    bytes: Uint8Array,
    probe: { data: Float32Array; dims: number[] },
  ): Promise<{ sessions: ModelSession[]; instances: number }> {
    const { inferenceWorker, threads, spinning, graphOptimizationLevel } = this.options;
    const open = (ep: EpName, instances: number) => {
      const options = { ep, threads: threads ?? defaultThreads(instances), spinning, graphOptimizationLevel, probe };
      return inferenceWorker
        ? openSessionInWorker(bytes, { ...options, nice: INFERENCE_THREAD_NICE })
        : openSession(bytes, options);
    };
    const asked = inferenceWorker ? this.options.instances : 1;
    // Whether the default gives a CPU model two instances is known once the first has its provider; its threads
    // are counted for the two a CPU would get (on a GPU they hardly matter).
    const first = await open(
      this.options.ep,
      asked ?? defaultInstances(bytes, this.options.ep === 'auto' ? 'cpu' : this.options.ep),
    );
    const instances = asked ?? defaultInstances(bytes, first.ep);
    const others = await Promise.allSettled(
      Array.from({ length: instances - 1 }, () => open(first.ep as EpName, instances)),
    );
    const failed = others.find((result) => result.status === 'rejected');
    const sessions = [first, ...others.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []))];
    if (failed) {
      await Promise.allSettled(sessions.map((session) => session.release()));
      throw failed.reason;
    }
    return { sessions, instances };
  }

  /**
   * The model repository (Triton's index): every model served, every one that failed to load, and every other
   * `.onnx` file of the served folders, with its state.
   */
  async index(): Promise<{ name: string; version: string; state: 'READY' | 'UNAVAILABLE'; reason: string }[]> {
    const entries = new Map<string, { state: 'READY' | 'UNAVAILABLE'; reason: string }>();
    for (const { dir, only } of this.sources) {
      const files = only !== undefined ? [only] : modelFilesOf(await readdir(dir).catch(() => [])).files;
      for (const file of files) entries.set(modelNameOf(file), { state: 'UNAVAILABLE', reason: 'unloaded' });
    }
    for (const [name, reason] of this.failures) entries.set(name, { state: 'UNAVAILABLE', reason });
    for (const [name, model] of this.models) {
      // A model whose file changed into one that cannot load (or whose folder went away) serves the version it had.
      const gone = await lstat(model.file).then(
        () => undefined,
        () => `${model.file} went away`,
      );
      const failure = this.failures.get(name) ?? gone;
      entries.set(name, {
        state: 'READY',
        reason: failure === undefined ? '' : `serving the version loaded before: ${failure}`,
      });
    }
    return [...entries]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, entry]) => ({ name, version: MODEL_VERSION, ...entry }));
  }

  /**
   * Loads model `name` from the repository: the file it was loaded from, or `<name>.onnx` (in any case) in a served folder (a
   * model that failed to load, was unloaded or is new). On failure a model that was serving keeps serving, and the
   * error is thrown.
   * @throws CnnxError MODEL_NOT_FOUND when no served folder holds `<name>.onnx`; the loading errors of `load`.
   */
  reload(name: string): Promise<LoadedModel> {
    // One operation in the name's order, the file looked up included: an unload asked for after it comes after it.
    return this.inOrder(name, async () => {
      const file = this.models.get(name)?.file ?? (await this.repositoryFile(name));
      if (file === undefined) {
        throw new CnnxError(
          `no model '${name}' in the repository (no ${name}.onnx in the served folders)`,
          'MODEL_NOT_FOUND',
        );
      }
      try {
        return await this.loadNow(file, name);
      } catch (error) {
        this.failures.set(name, messageOf(error));
        this.options.log(
          `reload of ${name} failed, ${this.models.has(name) ? 'still serving the previous version' : 'not serving it'}: ${messageOf(error)}`,
        );
        throw error;
      }
    });
  }

  /**
   * Stops serving model `name` once the requests it holds are answered (a later change to its file loads it again,
   * as does `reload`). A model of the repository that is not served (unloaded, or failed to load) is a no-op.
   * @throws CnnxError MODEL_NOT_FOUND when neither served nor in the repository.
   */
  unload(name: string): Promise<void> {
    return this.inOrder(name, async () => {
      const model = this.models.get(name);
      if (model === undefined) {
        // Not served, but in the repository: already unloaded, as Triton answers it.
        if (this.failures.delete(name) || (await this.repositoryFile(name)) !== undefined) return;
        throw new CnnxError(`model '${name}' not found; GET /v2 lists the served models`, 'MODEL_NOT_FOUND');
      }
      this.models.delete(name);
      this.failures.delete(name);
      this.options.log(`${name}: unloaded`);
      await this.retire(model);
    });
  }

  /**
   * The file of model `name` was removed from its folder: the model is no longer served (Triton's polling
   * repository unloads it too), and a failure its file left is forgotten. A folder that went away as a whole is
   * not this: it may be made again (`rm -rf models && cp -r new models`), and its models keep serving meanwhile.
   */
  private removed(name: string, file: string): Promise<void> {
    return this.inOrder(name, async () => {
      const model = this.models.get(name);
      if (model !== undefined && model.file !== file) return; // served from another file of that name
      this.failures.delete(name);
      if (model === undefined) return;
      this.models.delete(name);
      this.options.log(`${name}: its file ${file} was removed; unloaded`);
      await this.retire(model);
    });
  }

  /**
   * `<name>.onnx` (in any case: modelFilesOf) in a served folder, if there is anything of that name (and `name` is a plain file name, not hidden
   * in a folder); whether it loads is for the load to say.
   */
  private async repositoryFile(name: string): Promise<string | undefined> {
    if (name === '' || name !== basename(name)) return undefined;
    for (const { dir, only } of this.sources) {
      // Anything of that name (a folder, a dangling link, a FIFO): loading it says what is wrong with it.
      const entries =
        only !== undefined
          ? await lstat(join(dir, only)).then(
              () => [only],
              () => [],
            )
          : modelFilesOf(await readdir(dir).catch(() => [])).files;
      const file = entries.find((entry) => modelNameOf(entry) === name);
      if (file !== undefined) return join(dir, file);
    }
    return undefined;
  }

  /**
   * Watches a directory and reloads (or adds) a model when its file changes; `only` limits it to one file. A change
   * seen while that model reloads is not dropped: another reload follows, so the last version written is served.
   * A folder removed and made again (`rm -rf models && cp -r new models`) is watched anew within REWATCH_MS and its
   * files read: the system's watch follows the folder that was removed. A folder that cannot be watched is served
   * as loaded, with a warning.
   */
  watch(dir: string, only?: string): void {
    let watcher: FSWatcher | undefined;
    // A folder made again may get the removed one's inode number back (ext4 does at once): its birth time tells.
    const identity = (info: Stats | undefined) => info && `${info.ino}:${info.birthtimeMs}`;
    let made = identity(statSync(dir, { throwIfNoEntry: false }));
    const start = (): boolean => {
      try {
        watcher = watch(dir, (_event, filename) => {
          if (!filename) return;
          if (only !== undefined ? filename === only : isModelFileName(filename)) {
            // The model's file is the one loadPath would take now (`name.onnx` before `name.ONNX`: modelFilesOf);
            // none left, the file the event names (removed).
            const name = modelNameOf(filename);
            const chosen = only ?? this.folderFileOf(dir, name) ?? filename;
            this.reloadSoon(name, join(dir, chosen));
          } else if (!isModelFileName(filename)) {
            // Another entry changed: it may be what model links point through (Kubernetes swaps a ConfigMap
            // volume's `..data` link). Each linked model is read again; one whose bytes are the same stays.
            for (const name of linkedModels(dir, only)) this.reloadSoon(modelNameOf(name), join(dir, name));
          }
        });
      } catch (error) {
        // A folder this user may list but not watch, or the system's limit of watches reached (ENOSPC).
        this.options.log(
          `warning: cannot watch ${dir} (${whyUnreadable(error)}): its models are served as loaded, and not reloaded when their files change`,
        );
        return false;
      }
      watcher.on('error', () => {
        watcher?.close();
        watcher = undefined;
      });
      return true;
    };
    start();
    const check = setInterval(() => {
      const now = statSync(dir, { throwIfNoEntry: false });
      if (this.closed || !now?.isDirectory() || identity(now) === made) return;
      made = identity(now);
      watcher?.close();
      if (!start()) return;
      this.options.log(`${dir} was made again: watching it anew`);
      let names: string[] = [];
      try {
        names = readdirSync(dir);
      } catch {
        return; // gone again, or unreadable: the next check sees it
      }
      for (const name of names) {
        if (only !== undefined ? name === only : isModelFileName(name))
          this.reloadSoon(modelNameOf(name), join(dir, name));
      }
      // The folder made again without some of its models' files: those are removed.
      for (const model of this.models.values()) {
        if (dirname(model.file) === dir && !names.includes(basename(model.file))) {
          this.reloadSoon(model.name, model.file);
        }
      }
    }, REWATCH_MS);
    check.unref();
    this.watchers.push({
      close: () => {
        clearInterval(check);
        watcher?.close();
      },
    });
  }

  /** The file of model `name` in folder `dir`, by the rule loadPath follows (modelFilesOf); undefined when none. */
  private folderFileOf(dir: string, name: string): string | undefined {
    try {
      return modelFilesOf(readdirSync(dir)).files.find((file) => modelNameOf(file) === name);
    } catch {
      return undefined; // the folder went away: the check for a folder made again takes over
    }
  }

  /**
   * The file model `name` comes from now, in the folder of `file` (the one an event named, maybe since renamed in
   * another case): the folder's own choice (folderFileOf), or `file` for a model given as a file, or when none is left.
   */
  private currentFileOf(name: string, file: string): string {
    const dir = dirname(file);
    if (this.sources.some((source) => source.dir === dir && source.only === basename(file))) return file;
    const chosen = this.folderFileOf(dir, name);
    return chosen === undefined ? file : join(dir, chosen);
  }

  private reloadSoon(name: string, file: string): void {
    const running = this.reloading.get(name);
    if (running) {
      running.again = true;
      return;
    }
    const entry = { task: Promise.resolve(), again: false };
    entry.task = sleep(SETTLE_MS)
      .then(() => (this.closed ? undefined : this.reloadIfChanged(name, this.currentFileOf(name, file))))
      .catch((error: unknown) => {
        this.failures.set(name, messageOf(error));
        this.options.log(
          `reload of ${name} failed, ${this.models.has(name) ? 'still serving the previous version' : 'not serving it'}: ${messageOf(error)}`,
        );
      })
      .finally(() => {
        this.reloading.delete(name);
        if (entry.again && !this.closed) this.reloadSoon(name, file);
      });
    this.reloading.set(name, entry);
  }

  /**
   * Loads `file` unless the model it would replace came from the same bytes (a change event with no change); a file
   * removed from a folder that is still there unloads its model (`removed`).
   */
  private async reloadIfChanged(name: string, file: string): Promise<void> {
    const exists = (path: string) =>
      lstat(path).then(
        () => true,
        () => false,
      );
    if (!(await exists(file)) && (await stat(dirname(file)).catch(() => undefined))?.isDirectory()) {
      await this.removed(name, file);
      return;
    }
    const current = this.models.get(name);
    // A model of that name served from another folder's file keeps it (loadPath served the first one it met).
    if (current && dirname(current.file) !== dirname(file) && (await exists(current.file))) return;
    if (current) {
      const bytes = await readModelFile(file, { maxBytes: this.options.maxModelBytes }).catch(() => undefined);
      if (bytes && (await sha256Of(bytes)) === current.sha256) {
        this.failures.delete(name);
        current.file = file; // the same bytes under another name (`t.onnx` renamed `t.ONNX`): its file now
        return;
      }
    }
    await this.load(file);
  }

  /** Waits for in-flight batches, then releases every session. */
  async close(): Promise<void> {
    this.closed = true;
    for (const watcher of this.watchers) watcher.close();
    while (this.reloading.size > 0 || this.loading.size > 0) {
      await Promise.all([...[...this.reloading.values()].map((entry) => entry.task), ...this.loading.values()]);
    }
    await Promise.all([...this.models.values()].map((model) => this.retire(model)));
    this.models.clear();
  }

  private async retire(model: LoadedModel): Promise<void> {
    await model.batcher.close();
    await model.session.release();
  }
}
