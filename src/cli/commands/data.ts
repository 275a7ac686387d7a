/** `cnnx data info`: where a dataset comes from, its counts per split and class, and its checksum status. */
import type { Command } from 'commander';
import { classCounts, DATASET_NAMES, loadDataset, type DatasetName } from '../../data/index.js';
import { addDataSourceOptions, oneOf, type DataSourceFlags } from '../options.js';

interface InfoOptions extends DataSourceFlags {
  dataset: DatasetName;
  json?: boolean;
}

export function registerData(program: Command): void {
  const data = program.command('data').description('inspect the datasets (MNIST, Fashion-MNIST)');
  const info = data
    .command('info')
    .description("show a dataset's source, per-split and per-class counts, and checksum status")
    .requiredOption('-d, --dataset <name>', `dataset: ${DATASET_NAMES.join(' | ')}`, oneOf(DATASET_NAMES))
    .option('--json', 'print one JSON object');
  addDataSourceOptions(info).action(async (options: InfoOptions) => {
    const dataset = await loadDataset(options.dataset, {
      dataDir: options.dataDir,
      idxDir: options.idxDir,
      offline: options.offline,
      log: (message) => console.error(message),
    });
    const perClass = (labels: Uint8Array) => classCounts(labels, dataset.classes.length);
    const train = { count: dataset.train.count, perClass: perClass(dataset.train.labels) };
    const test = { count: dataset.test.count, perClass: perClass(dataset.test.labels) };
    const summary = {
      dataset: dataset.name,
      source: dataset.source,
      image: [dataset.train.rows, dataset.train.cols],
      splits: { train, test },
      files: dataset.files,
    };
    if (options.json) {
      console.log(JSON.stringify(summary));
      return;
    }
    console.log(
      `dataset   ${dataset.name} (${dataset.train.rows}x${dataset.train.cols}, ${dataset.classes.length} classes)`,
    );
    console.log(`source    ${dataset.source}`);
    for (const [name, split] of Object.entries(summary.splits))
      console.log(`${name.padEnd(9)} ${split.count} examples`);
    const width = Math.max(...dataset.classes.map((c) => c.length), 5);
    console.log(`\n${'class'.padEnd(width + 4)}${'train'.padStart(7)}${'test'.padStart(7)}`);
    dataset.classes.forEach((name, c) => {
      const row = `${String(c).padStart(2)}  ${name.padEnd(width)}`;
      console.log(`${row}${String(train.perClass[c]).padStart(7)}${String(test.perClass[c]).padStart(7)}`);
    });
    console.log('\nchecksums');
    for (const file of dataset.files) console.log(`  ${file.checksum.padEnd(12)} ${file.file}`);
  });
}
