import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeSafetensors, readSafetensors } from '../../src/common/index.js';
import { tempDir } from '../helpers/temp-dir.js';

describe('safetensors', () => {
  it.each(['digits', 'carré ☐', 'Äpfel', '日本語のクラス', 'e\u0301'])(
    'round-trips weights whose metadata holds %s, data 8-byte aligned',
    async (name) => {
      const tensors = new Map([
        ['0.weight', { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }],
        ['0.bias', { shape: [3], data: Float32Array.from([0.5, -0.5, 1e-7]) }],
      ]);
      const bytes = encodeSafetensors(tensors, { config: JSON.stringify({ classes: [name, 'other'] }) });
      const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      expect((8 + headerLength) % 8).toBe(0);
      const file = join(await tempDir(), 'w.safetensors');
      await writeFile(file, bytes);
      const read = await readSafetensors(file);
      expect(JSON.parse(read.metadata.config!)).toEqual({ classes: [name, 'other'] });
      expect([...read.tensors.keys()]).toEqual(['0.weight', '0.bias']);
      expect(Array.from(read.tensors.get('0.bias')!.data)).toEqual(Array.from(tensors.get('0.bias')!.data));
    },
  );
});
