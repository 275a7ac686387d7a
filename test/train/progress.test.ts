import { describe, expect, it } from 'vitest';
import { formatRate } from '../../src/train/index.js';

describe('training progress', () => {
  it('writes rates as whole numbers from 10 up and with two significant digits below, so a slow run never reads 0', () => {
    expect([0, 0.0681, 4.94, 9.99, 10.4, 4424.6].map(formatRate)).toEqual(['0', '0.068', '4.9', '10', '10', '4425']);
  });
});
