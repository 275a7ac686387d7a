/**
 * BatchNormalization over the channels (tfjs axis -1) -> BatchNormalization with the moving statistics, for a
 * batch norm the exporter could not fold into the conv or dense layer before it. Without `scale` or `center`,
 * gamma is 1 and beta 0, as in tfjs. On flat features in NCHW order the statistics are put in that order too.
 */
import { toOnnxOrder } from '../../layout.js';
import { onlyInput, type ConvertContext, type Converter } from '../context.js';

/** Whether the batch norm normalises the last axis of a rank-`rank` input (the only one ONNX's op has). */
export function normalisesChannels(context: Pick<ConvertContext, 'config'>, rank: number): boolean {
  const raw = context.config.layer.config.axis ?? -1;
  const axis = Array.isArray(raw) && raw.length === 1 ? raw[0] : raw;
  return axis === -1 || axis === rank - 1;
}

export const batchNormalization: Converter = (context) => {
  const input = onlyInput(context);
  const rank = input.shape.length + 1;
  if (!normalisesChannels(context, rank)) {
    throw context.config.unsupported(
      `normalising axis ${JSON.stringify(context.config.layer.config.axis)}; only the channels axis is supported`,
    );
  }
  const features = input.shape[0]!;
  const output = context.outputName();
  const saved = {
    gamma: context.config.boolean('scale', true),
    beta: context.config.boolean('center', true),
    moving_mean: true,
    moving_variance: true,
  };
  const param = (short: keyof typeof saved, fallback: number) => {
    const values = saved[short]
      ? context.requireWeight(short).data
      : (context.weight(short)?.data ?? new Float32Array(features).fill(fallback));
    return context.addInitializer(
      `${output}/${short}`,
      [features],
      input.order ? toOnnxOrder(values, input.order) : values,
    );
  };
  context.addNode(
    'BatchNormalization',
    [input.name, param('gamma', 1), param('beta', 0), param('moving_mean', 0), param('moving_variance', 1)],
    [output],
    { epsilon: { float: context.config.number('epsilon', 1e-3) } },
  );
  return { ...input, name: output };
};
