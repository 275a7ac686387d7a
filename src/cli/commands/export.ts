/** `cnnx export`: a run's best weights to a verified ONNX file (and optionally a Triton model repository). */
import type { Command } from 'commander';
import { DEFAULT_OPSET, exportRun, MAX_OPSET, MIN_OPSET } from '../../export/index.js';
import { positiveInt } from '../options.js';

interface ExportFlags {
  run: string;
  out: string;
  opset: number;
  triton?: string;
  parityCount?: number;
}

export function registerExport(program: Command): void {
  program
    .command('export')
    .description("export a training run's best weights to ONNX, verified against TensorFlow.js with ONNX Runtime")
    .requiredOption('-r, --run <dir>', 'training run directory (from cnnx train)')
    .requiredOption(
      '-o, --out <file.onnx>',
      'ONNX file to write, named *.onnx (its name without .onnx is the served model name)',
    )
    .option('--opset <n>', `ONNX opset, ${MIN_OPSET}..${MAX_OPSET}`, positiveInt, DEFAULT_OPSET)
    .option('--triton <dir>', 'also write a Triton Inference Server model repository here')
    .option('--parity-count <n>', 'test images compared between tfjs and ONNX Runtime', positiveInt)
    .action(async (flags: ExportFlags) => {
      const result = await exportRun({
        runDir: flags.run,
        out: flags.out,
        opset: flags.opset,
        triton: flags.triton,
        parityCount: flags.parityCount,
        log: (message) => console.error(message),
      });
      console.log(`wrote ${result.file} (${(result.bytes / 1024).toFixed(0)} KB)`);
      if (result.tritonDir) console.log(`wrote Triton model repository ${result.tritonDir}`);
    });
}
