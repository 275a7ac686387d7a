/**
 * `cnnx predict`: classify image files (PNG, JPEG, WebP) with an ONNX model; prints the class and top-3, or why a
 * picture holds nothing to classify (blank, or ink that is not a digit), as /classify's 422 says.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { CnnxError } from '../../common/index.js';
import { decodeImage } from '../../data/index.js';
import { classifyImages, CUDA_HELP, EP_NAMES, openSession, readOnnxModel, type EpName } from '../../runtime/index.js';
import { oneOf } from '../options.js';

export function registerPredict(program: Command): void {
  program
    .command('predict')
    .description('classify image files with an ONNX model')
    .argument('<images...>', 'PNG, JPEG or WebP files: dark ink on light paper or light on dark both work')
    .requiredOption('-m, --model <file.onnx>', 'ONNX model')
    .option('--ep <name>', `execution provider: ${EP_NAMES.join(' | ')}`, oneOf(EP_NAMES as EpName[]), 'cpu')
    .option('--json', 'print one JSON line per image')
    .addHelpText('after', `\n--ep cuda: ${CUDA_HELP}`)
    .action(async (images: string[], flags: { model: string; ep: EpName; json?: boolean }) => {
      const { bytes, signature } = await readOnnxModel(flags.model);
      const decoded = await Promise.all(
        images.map(async (file) => {
          const data = await readFile(file).catch((error: NodeJS.ErrnoException) => {
            throw new CnnxError(`${file}: cannot read (${error.code ?? error.message})`, 'BAD_IMAGE');
          });
          return decodeImage(data, file);
        }),
      );
      const session = await openSession(bytes, { ep: flags.ep });
      try {
        const results = await classifyImages(session, signature, decoded);
        results.forEach((result, i) => {
          if (flags.json) {
            console.log(JSON.stringify({ file: images[i], ...result }));
            return;
          }
          if ('nothing' in result) {
            console.log(`${images[i]}: nothing to classify (${result.nothing})`);
            return;
          }
          const top = result.top.map((t) => `${t.class} ${(t.probability * 100).toFixed(1)}%`).join(', ');
          console.log(`${images[i]}: ${result.class}  (top-3: ${top})`);
        });
      } finally {
        await session.release();
      }
    });
}
