/**
 * `cnnx predict`: classify image files (PNG, JPEG, WebP) with an ONNX model; prints the class name and top-3, or why
 * a picture holds nothing to classify (blank, or ink that is not a digit), as /classify's 422 says. Each picture is
 * prepared by the model's own procedure (its `cnnx.preprocess` metadata): MNIST's for digits, a plain fit for
 * Fashion-MNIST, and for a model trained on the user's pictures the picture resized to its channels (gray or RGB) and
 * size. A file that cannot be read or decoded gets an error line (and `{"file", "error", "code"}` with --json) and
 * exit status 1; the others are still classified.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { CnnxError, whyUnreadable } from '../../common/index.js';
import { decodeImage } from '../../data/index.js';
import { classifyImages, CUDA_HELP, EP_NAMES, openSession, readOnnxModel, type EpName } from '../../runtime/index.js';
import { oneOf } from '../options.js';

export function registerPredict(program: Command): void {
  program
    .command('predict')
    .description('classify image files with an ONNX model')
    .argument(
      '<images...>',
      "PNG, JPEG or WebP files, colour or gray, prepared as the model's metadata says (for digits: dark ink on light " +
        'paper or light on dark both work)',
    )
    .requiredOption('-m, --model <file.onnx>', 'ONNX model')
    .option('--ep <name>', `execution provider: ${EP_NAMES.join(' | ')}`, oneOf(EP_NAMES as EpName[]), 'cpu')
    .option('--json', 'print one JSON line per image')
    .addHelpText('after', `\n--ep cuda: ${CUDA_HELP}`)
    .action(async (images: string[], flags: { model: string; ep: EpName; json?: boolean }) => {
      const { bytes, signature } = await readOnnxModel(flags.model);
      // Every file is tried: one that cannot be read or decoded gets its own error line, the others their answer.
      const settled = await Promise.allSettled(
        images.map(async (file) => {
          const data = await readFile(file).catch((error: NodeJS.ErrnoException) => {
            throw new CnnxError(`${file}: cannot read (${whyUnreadable(error)})`, 'BAD_IMAGE');
          });
          return decodeImage(data, file);
        }),
      );
      const readable = images.flatMap((file, i) => {
        const outcome = settled[i]!;
        if (outcome.status === 'fulfilled') return [{ file, image: outcome.value }];
        if (!(outcome.reason instanceof CnnxError)) throw outcome.reason;
        console.error(`cnnx: ${outcome.reason.message}`);
        if (flags.json) console.log(JSON.stringify({ file, error: outcome.reason.message, code: outcome.reason.code }));
        process.exitCode = 1;
        return [];
      });
      if (readable.length === 0) return;
      const session = await openSession(bytes, { ep: flags.ep });
      try {
        const results = await classifyImages(
          session,
          signature,
          readable.map((r) => r.image),
        );
        results.forEach((result, i) => {
          const file = readable[i]!.file;
          if (flags.json) {
            console.log(JSON.stringify({ file, ...result }));
            return;
          }
          if ('nothing' in result) {
            console.log(`${file}: nothing to classify (${result.nothing})`);
            return;
          }
          const top = result.top.map((t) => `${t.class} ${(t.probability * 100).toFixed(1)}%`).join(', ');
          console.log(`${file}: ${result.class}  (top-3: ${top})`);
        });
      } finally {
        await session.release();
      }
    });
}
