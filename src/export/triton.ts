/**
 * A Triton Inference Server model repository for an exported model: `<dir>/<name>/1/model.onnx` and
 * `<dir>/<name>/config.pbtxt` with the onnxruntime backend and dynamic batching.
 */
import { join } from 'node:path';
import { writeFileAtomic } from '../common/index.js';
import type { ModelSignature } from '../runtime/index.js';

/** What the Triton config needs of a model's signature. */
type TritonSignature = Pick<ModelSignature, 'inputName' | 'outputName' | 'inputShape' | 'classes'>;

function tritonConfig(name: string, signature: TritonSignature, maxBatchSize = 256): string {
  const [, c, h, w] = signature.inputShape;
  return `name: "${name}"
platform: "onnxruntime_onnx"
max_batch_size: ${maxBatchSize}
input [
  {
    name: "${signature.inputName}"
    data_type: TYPE_FP32
    dims: [ ${c}, ${h}, ${w} ]
  }
]
output [
  {
    name: "${signature.outputName}"
    data_type: TYPE_FP32
    dims: [ ${signature.classes} ]
  }
]
dynamic_batching {
  preferred_batch_size: [ 16, 64 ]
  max_queue_delay_microseconds: 500
}
instance_group [ { kind: KIND_AUTO } ]
`;
}

export async function writeTritonRepository(
  dir: string,
  name: string,
  onnxBytes: Uint8Array,
  signature: TritonSignature,
): Promise<string> {
  await writeFileAtomic(join(dir, name, '1', 'model.onnx'), onnxBytes);
  await writeFileAtomic(join(dir, name, 'config.pbtxt'), tritonConfig(name, signature));
  return join(dir, name);
}
