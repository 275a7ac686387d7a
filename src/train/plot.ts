/**
 * The training curves as an SVG a person opens: loss, train accuracy and the accuracy the best epoch is chosen by
 * (validation, or test as the notebook chooses) per epoch (vega-lite).
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { writeFileAtomic } from '../common/index.js';
import type { EpochMetrics } from './run-dir.js';

async function renderCurves(title: string, metrics: EpochMetrics[]): Promise<string> {
  const held = metrics.some((m) => m.valAccuracy !== undefined) ? 'val acc' : 'test acc';
  const values = metrics.flatMap((m) => [
    { epoch: m.epoch, series: 'train loss', value: m.loss },
    { epoch: m.epoch, series: 'train acc', value: m.trainAccuracy },
    { epoch: m.epoch, series: held, value: m.valAccuracy ?? m.testAccuracy },
  ]);
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: 520,
    height: 300,
    background: 'white',
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', axis: { tickMinStep: 1 } },
      y: { field: 'value', type: 'quantitative', title: null },
      color: { field: 'series', type: 'nominal', sort: ['train loss', 'train acc', held] },
    },
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
