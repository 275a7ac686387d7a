/**
 * Downloads a file once into the cache: streamed to a temporary file, md5-checked, then renamed into place, so an
 * interrupted or corrupt download never leaves a file that looks complete.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CnnxError, produceFileAtomic } from '../common/index.js';
import { ChecksumError } from './checksums.js';

export interface DownloadOptions {
  /** Abort when no complete response arrives within this many milliseconds. */
  timeoutMs?: number;
}

/** Downloads `url` to `target` atomically; rejects (leaving nothing at `target`) on HTTP errors or a bad md5. */
export async function downloadVerified(
  url: string,
  target: string,
  expectedMd5: string,
  options: DownloadOptions = {},
): Promise<void> {
  await produceFileAtomic(target, async (temporary) => {
    let response: Response;
    try {
      response = await fetch(url, { signal: AbortSignal.timeout(options.timeoutMs ?? 120_000) });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (error as Error).message;
      throw new CnnxError(`download of ${url} failed: ${why}`, 'DOWNLOAD_FAILED');
    }
    if (!response.ok || response.body === null) {
      throw new CnnxError(`download of ${url} failed: HTTP ${response.status}`, 'DOWNLOAD_FAILED');
    }
    const hash = createHash('md5');
    const body = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>);
    body.on('data', (chunk: Buffer) => hash.update(chunk));
    await pipeline(body, createWriteStream(temporary));
    const actual = hash.digest('hex');
    if (actual !== expectedMd5)
      throw new ChecksumError(url, actual, expectedMd5, 'the download is damaged or the server sent another file');
  });
}
