/**
 * `model.save('file://dir')` without tfjs-node: a save handler that writes exactly the files tfjs-node's file
 * system handler writes, `dir/model.json` (topology and a weights manifest naming one shard) and
 * `dir/weights.bin` (every weight's bytes, in manifest order).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';

/**
 * Saves `model` into `dir` with tfjs's own `model.save`, as tfjs-node's `file://` handler lays it out; `config` is
 * model.save's (includeOptimizer).
 */
export async function saveLayersModel(model: tf.LayersModel, dir: string, config?: tf.io.SaveConfig): Promise<string> {
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      await mkdir(dir, { recursive: true });
      const weightsManifest = [{ paths: ['weights.bin'], weights: artifacts.weightSpecs ?? [] }];
      const modelJson: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology as object,
        weightsManifest,
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy,
        ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
        ...(artifacts.userDefinedMetadata ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
      };
      await writeFile(join(dir, 'model.json'), JSON.stringify(modelJson), 'utf8');
      const data = artifacts.weightData;
      const bytes = data === undefined ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(data);
      await writeFile(join(dir, 'weights.bin'), Buffer.from(bytes));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
    config,
  );
  return dir;
}
