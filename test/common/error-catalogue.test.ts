/** One catalogue of error codes, documented: docs/errors.md and src/common/errors.ts must agree both ways. */
import { readdir, readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/common/index.js';

const documented = async () => {
  const page = await readFile(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  return new Map(
    [...page.matchAll(/^\|\s*`([A-Z_]+)`\s*\|\s*(\d{3})\s*\|/gm)].map(([, code, status]) => [code!, Number(status)]),
  );
};

describe('the error catalogue', () => {
  it('documents every code with its status', async () => {
    const docs = await documented();
    for (const [code, status] of Object.entries(ERROR_CODES)) expect([code, docs.get(code)]).toEqual([code, status]);
  });

  it('documents no code that does not exist', async () => {
    const unknown = [...(await documented()).keys()].filter((code) => !Object.hasOwn(ERROR_CODES, code));
    expect(unknown).toEqual([]);
  });

  it('has no code that no source file raises', async () => {
    const src = new URL('../../src/', import.meta.url);
    const files = (await readdir(src, { recursive: true })).filter((file) => file.endsWith('.ts'));
    const raised = new Set<string>();
    for (const file of files) {
      for (const [, code] of (await readFile(new URL(file, src), 'utf8')).matchAll(/'([A-Z][A-Z_]+)'/g))
        raised.add(code!);
    }
    expect(Object.keys(ERROR_CODES).filter((code) => !raised.has(code))).toEqual([]);
  });
});
