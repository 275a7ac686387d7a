/**
 * The last step of every export: the ONNX bytes are written to a temporary file beside the output, read back as a
 * user would load them, compared with the model they came from, and renamed into place only when they agree.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { CnnxError, produceFileAtomic } from '../common/index.js';
import { describeTolerance, type ParityReport, type Tolerance } from './tolerances.js';

export interface VerifiedWrite {
  /** Where the model goes (`*.onnx`); nothing is there, or the previous file stays, if verification fails. */
  out: string;
  bytes: Uint8Array;
  tolerance: Tolerance;
  /** Compares the written model (its bytes, as read back) with its source. */
  verify: (written: Uint8Array) => Promise<ParityReport>;
  /** What was compared, for the log line: e.g. `tfjs wasm vs onnxruntime-node cpu, 256 mnist test images`. */
  compared: string;
  /** What the compared values are called (`logit`, or `output` for a model whose outputs may not be logits). */
  valueName: string;
  log: (message: string) => void;
}

/**
 * Writes `bytes` to `out` only if `verify` finds them within `tolerance`; resolves to the comparison.
 * @throws CnnxError EXPORT_PARITY (no file written) when they are not; WRITE_FAILED when the disk refuses.
 */
export async function writeVerified(write: VerifiedWrite): Promise<ParityReport> {
  let parity: ParityReport | undefined;
  await produceFileAtomic(write.out, async (temporary) => {
    await writeFile(temporary, write.bytes);
    parity = await write.verify(await readFile(temporary));
    write.log(
      `parity (${write.compared}): max abs diff ${parity.maxAbsDiff.toExponential(2)} at ` +
        `|${write.valueName}| <= ${parity.maxAbsLogit.toPrecision(3)} (tolerance ${describeTolerance(write.tolerance)}: ` +
        `${(parity.worstRatio * 100).toFixed(0)}% of it used), top-1 agreement ${(parity.top1Agreement * 100).toFixed(1)}%`,
    );
    if (!parity.withinTolerance) {
      throw new CnnxError(
        `export failed verification: max abs diff ${parity.maxAbsDiff} (${parity.worstRatio.toFixed(1)}x the ` +
          `tolerance ${describeTolerance(write.tolerance)}), top-1 agreement ${(parity.top1Agreement * 100).toFixed(1)}%; no file written`,
        'EXPORT_PARITY',
      );
    }
  });
  return parity!;
}
