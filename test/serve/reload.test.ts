/**
 * Hot reload converges on what is on disk, and the page downloads the model that is loaded: two valid updates
 * written 0.5 s apart (the second used to be dropped while the first reloaded), then a bad file and a delete
 * (the page used to get the bad file, then a 500).
 */
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type CnnxServer } from '../../src/serve/index.js';
import { tempDir } from '../helpers/temp-dir.js';

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
let server: CnnxServer;
let dir: string;

beforeAll(async () => {
  dir = await tempDir();
  await copyFile('models/lenet5-relu-mnist.onnx', join(dir, 'digits.onnx'));
  server = await createServer({ model: dir, ep: 'cpu', watch: true });
});
afterAll(() => server?.close());

const served = async () => (await server.app.inject({ url: '/v2/models/digits' })).json().parameters.sha256 as string;
const page = () => server.app.inject({ url: '/models/digits.onnx' });

/** Polls `check` until it holds or `limitMs` passes (a loaded machine reloads slowly); returns whether it held. */
async function eventually(check: () => Promise<boolean>, limitMs = 60_000): Promise<boolean> {
  for (const end = Date.now() + limitMs; Date.now() < end; await sleep(200)) if (await check()) return true;
  return false;
}

describe('models on disk and the models served', () => {
  it('serves the last of two updates written 0.5 s apart, and the page downloads that model', async () => {
    await copyFile('models/lenet5-mnist.onnx', join(dir, 'digits.onnx'));
    await sleep(500);
    await copyFile('models/lenet5-relu-fashion-mnist.onnx', join(dir, 'digits.onnx'));
    const onDisk = sha256(await readFile(join(dir, 'digits.onnx')));
    expect(await eventually(async () => (await served()) === onDisk)).toBe(true);
    // Quiet for a while: no late reload of an older version follows.
    await sleep(1500);
    expect(await served()).toBe(onDisk);
    const download = await page();
    expect(download.statusCode).toBe(200);
    expect(download.headers.etag).toBe(`"${onDisk}"`);
    expect(sha256(download.rawPayload)).toBe(onDisk);
  });

  it('after a bad file the page downloads the model the API serves; after a delete neither serves it', async () => {
    const loaded = await served();
    await writeFile(join(dir, 'digits.onnx'), 'not a model');
    expect(await eventually(async () => server.registry.failures.has('digits'))).toBe(true);
    expect(await served()).toBe(loaded);
    expect(sha256((await page()).rawPayload)).toBe(loaded);
    // The repository says why: the model is ready, on the version it had.
    const index = (await server.app.inject({ method: 'POST', url: '/v2/repository/index' })).json() as {
      name: string;
      state: string;
      reason: string;
    }[];
    expect(index.find((entry) => entry.name === 'digits')).toMatchObject({
      state: 'READY',
      reason: expect.stringMatching(/^serving the version loaded before: .*digits\.onnx/),
    });
    // Deleted from the folder, the model is no longer served, by the API or to the page (Triton's polling
    // repository unloads it too): both say so, neither answers 500.
    await rm(join(dir, 'digits.onnx'));
    expect(await eventually(async () => server.registry.get('digits') === undefined)).toBe(true);
    expect((await server.app.inject({ url: '/v2/models/digits' })).statusCode).toBe(404);
    expect((await page()).statusCode).toBe(404);
  });
});

describe('the repository follows the folder: removed, renamed and re-cased files, and load then unload', () => {
  let folder: string;
  let watched: CnnxServer;
  const logged: string[] = [];
  beforeAll(async () => {
    folder = await tempDir();
    await copyFile('models/lenet5-relu-mnist.onnx', join(folder, 'a.onnx'));
    await copyFile('models/lenet5-mnist.onnx', join(folder, 'UPPER.ONNX'));
    await copyFile('models/lenet5-mnist.onnx', join(folder, 'twice.onnx'));
    await copyFile('models/lenet5-relu-mnist.onnx', join(folder, 'twice.ONNX'));
    watched = await createServer({ model: folder, ep: 'cpu', watch: true, log: (m) => logged.push(m) });
  });
  afterAll(() => watched?.close());
  const ready = async (name: string) => (await watched.app.inject({ url: `/v2/models/${name}/ready` })).statusCode;

  it('serves a .ONNX file by its name, and name.onnx before name.ONNX, saying so', async () => {
    expect(await ready('UPPER')).toBe(200);
    expect(watched.registry.get('twice')!.file).toBe(join(folder, 'twice.onnx'));
    expect(logged).toContain(
      `warning: ${join(folder, 'twice.ONNX')} is not served: ${join(folder, 'twice.onnx')} names the same model`,
    );
  });

  it('serves a renamed file under its new name only (the common deploy: write new.onnx, then mv it over)', async () => {
    await copyFile('models/lenet5-mnist.onnx', join(folder, 'new.onnx'));
    expect(await eventually(async () => (await ready('new')) === 200)).toBe(true);
    await rename(join(folder, 'new.onnx'), join(folder, 'a.onnx'));
    const wanted = sha256(await readFile('models/lenet5-mnist.onnx'));
    expect(await eventually(async () => watched.registry.get('a')?.sha256 === wanted)).toBe(true);
    expect(await eventually(async () => (await ready('new')) === 404)).toBe(true);
    // Its metrics went with it.
    expect((await watched.app.inject({ url: '/metrics' })).body).not.toMatch(/model="new"/);
    const index = (await watched.app.inject({ method: 'POST', url: '/v2/repository/index' })).json() as {
      name: string;
    }[];
    expect(index.map((entry) => entry.name)).toEqual(['a', 'twice', 'UPPER'].sort());
  });

  it('serves name.ONNX once name.onnx beside it is removed', async () => {
    await rm(join(folder, 'twice.onnx'));
    expect(await eventually(async () => watched.registry.get('twice')?.file === join(folder, 'twice.ONNX'))).toBe(true);
  });

  it('unloads a model given as ./path/file.onnx when that file is removed', async () => {
    const file = join(await tempDir(), 'single.onnx');
    await copyFile('models/lenet5-mnist.onnx', file);
    const single = await createServer({ model: `./${relative(process.cwd(), file)}`, ep: 'cpu', watch: true });
    try {
      expect(single.registry.get('single')).toBeDefined();
      await rm(file);
      expect(await eventually(async () => single.registry.get('single') === undefined)).toBe(true);
    } finally {
      await single.close();
    }
  });

  it('forgets a bad file once it is removed: not a retryable 503 for good, but 404', async () => {
    await writeFile(join(folder, 'junk.onnx'), 'not a model');
    expect(await eventually(async () => watched.registry.failures.has('junk'))).toBe(true);
    expect(await ready('junk')).toBe(503);
    await rm(join(folder, 'junk.onnx'));
    expect(await eventually(async () => !watched.registry.failures.has('junk'))).toBe(true);
    expect(await ready('junk')).toBe(404);
  });

  it('ends unloaded when an unload is asked right after a load, however the two are timed', async () => {
    const post = (verb: string) => watched.app.inject({ method: 'POST', url: `/v2/repository/models/a/${verb}` });
    for (let i = 0; i < 8; i++) {
      await post('unload');
      const [load, unload] = await Promise.all([post('load'), post('unload')]);
      expect([load.statusCode, unload.statusCode]).toEqual([200, 200]);
      expect(await ready('a')).not.toBe(200);
    }
    expect((await post('load')).statusCode).toBe(200);
  });
});

describe('a folder that cannot be watched', () => {
  it('is served as loaded, with a warning, not a crash', async () => {
    const logged: string[] = [];
    const folder = await tempDir();
    await copyFile('models/lenet5-relu-mnist.onnx', join(folder, 'digits.onnx'));
    const unwatched = await createServer({ model: folder, ep: 'cpu', watch: false, log: (m) => logged.push(m) });
    try {
      // Gone by the time it is watched (a folder this user may read but not watch fails the same way).
      unwatched.registry.watch(join(folder, 'gone'));
      expect(logged.at(-1)).toBe(
        `warning: cannot watch ${join(folder, 'gone')} (no such file): its models are served as loaded, and not reloaded when their files change`,
      );
      expect((await unwatched.app.inject({ url: '/v2/models/digits/ready' })).statusCode).toBe(200);
    } finally {
      await unwatched.close();
    }
  });
});

describe('a watched folder removed and made again', () => {
  it('is watched anew, and the models put in it are served', async () => {
    const root = await tempDir();
    const folder = join(root, 'models');
    await mkdir(folder);
    await copyFile('models/lenet5-relu-mnist.onnx', join(folder, 'digits.onnx'));
    const logged: string[] = [];
    const watched = await createServer({ model: folder, ep: 'cpu', watch: true, log: (m) => logged.push(m) });
    try {
      // A deploy that replaces the whole folder: the system's watch follows the folder that was removed.
      await rm(folder, { recursive: true });
      await mkdir(folder);
      await copyFile('models/lenet5-relu-mnist.onnx', join(folder, 'fresh.onnx'));
      const ready = async () => (await watched.app.inject({ url: '/v2/models/fresh/ready' })).statusCode;
      for (let waited = 0; waited < 20_000 && (await ready()) !== 200; waited += 250) await sleep(250);
      expect(await ready()).toBe(200);
      expect(logged).toContain(`${folder} was made again: watching it anew`);
    } finally {
      await watched.close();
    }
  }, 60_000);
});

describe('a model reached through links, as a Kubernetes ConfigMap volume holds it', () => {
  it('is reloaded when the link it goes through is swapped', async () => {
    // volume/digits.onnx -> ..data/digits.onnx, ..data -> ..v1; a new version is ..v2, and ..data is swapped to it.
    const volume = await tempDir();
    await mkdir(join(volume, '..v1'));
    await copyFile('models/lenet5-relu-mnist.onnx', join(volume, '..v1', 'digits.onnx'));
    await symlink('..v1', join(volume, '..data'));
    await symlink(join('..data', 'digits.onnx'), join(volume, 'digits.onnx'));
    const linked = await createServer({ model: volume, ep: 'cpu', watch: true });
    try {
      const sha = async () =>
        (await linked.app.inject({ url: '/v2/models/digits' })).json().parameters.sha256 as string;
      const first = await sha();
      await mkdir(join(volume, '..v2'));
      await copyFile('models/lenet5-mnist.onnx', join(volume, '..v2', 'digits.onnx'));
      await symlink('..v2', join(volume, '..data_tmp'));
      await rename(join(volume, '..data_tmp'), join(volume, '..data'));
      const wanted = sha256(await readFile('models/lenet5-mnist.onnx'));
      for (let waited = 0; waited < 20_000 && (await sha()) !== wanted; waited += 250) await sleep(250);
      expect(first).not.toBe(wanted);
      expect(await sha()).toBe(wanted);
    } finally {
      await linked.close();
    }
  }, 60_000);
});
