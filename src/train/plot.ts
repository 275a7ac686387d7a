/**
 * The training curves as an SVG a person opens (vega-lite), per epoch: the train loss on a log scale beside the train
 * accuracy and the accuracy the best epoch is chosen by (validation, or test as the notebook chooses), from 0 to 1.
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { writeFileAtomic } from '../common/index.js';
import type { EpochMetrics } from './run-dir.js';

async function renderCurves(title: string, metrics: EpochMetrics[]): Promise<string> {
  const held = metrics.some((m) => m.valAccuracy !== undefined) ? 'val acc' : 'test acc';
  const epochs = Math.max(2, ...metrics.map((m) => m.epoch));
  // Whole epochs on the x axis, from 1, even for a run of one epoch.
  const x = {
    field: 'epoch',
    type: 'quantitative' as const,
    title: 'epoch',
    scale: { domain: [1, epochs] },
    axis: { tickMinStep: 1, format: 'd' },
  };
  const colour = (sort: string[]) => ({ field: 'series', type: 'nominal' as const, sort, title: null });
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    background: 'white',
    // Two panels, so that a loss far above 1 (a run that diverged) does not flatten the accuracies against 0.
    hconcat: [
      {
        width: 300,
        height: 260,
        data: { values: metrics.map((m) => ({ epoch: m.epoch, series: 'train loss', value: Math.max(m.loss, 1e-6) })) },
        mark: { type: 'line', point: true },
        encoding: {
          x,
          y: { field: 'value', type: 'quantitative', title: 'loss (log scale)', scale: { type: 'log' } },
          color: colour(['train loss']),
        },
      },
      {
        width: 300,
        height: 260,
        data: {
          values: metrics.flatMap((m) => [
            { epoch: m.epoch, series: 'train acc', value: m.trainAccuracy },
            { epoch: m.epoch, series: held, value: m.valAccuracy ?? m.testAccuracy },
          ]),
        },
        mark: { type: 'line', point: true },
        encoding: {
          x,
          y: { field: 'value', type: 'quantitative', title: 'accuracy', scale: { domain: [0, 1] } },
          color: colour(['train acc', held]),
        },
      },
    ],
    resolve: { scale: { color: 'independent' } },
  };
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

/** Writes the curves of `metrics` (one entry per epoch) to `file` as SVG, atomically. */
export async function writeCurves(file: string, title: string, metrics: EpochMetrics[]): Promise<void> {
  await writeFileAtomic(file, await renderCurves(title, metrics));
}
