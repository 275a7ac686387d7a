/**
 * `cnnx data info`: where a dataset comes from (a built-in one with `--dataset`, or the user's own pictures with
 * `--data`), its picture size and channels, its counts per split and class, and its checksum status.
 */
import type { Command } from 'commander';
import { CnnxError } from '../../common/index.js';
import {
  classCounts,
  DATASET_NAMES,
  loadDataset,
  loadUserDataset,
  type Dataset,
  type DatasetName,
  type UserDataOptions,
  type UserDataset,
} from '../../data/index.js';
import {
  addDataSourceOptions,
  addUserDataOptions,
  oneOf,
  refuseUserDataOptions,
  type DataSourceFlags,
  type UserDataFlags,
} from '../options.js';

interface InfoOptions extends DataSourceFlags, UserDataFlags {
  dataset?: DatasetName;
  json?: boolean;
}

/** The dataset the flags name: exactly one of `--dataset` and `--data`, each with only its own options. */
async function datasetOf(options: InfoOptions, command: Command): Promise<Dataset | UserDataset> {
  const log = (message: string) => console.error(message);
  if (options.dataset !== undefined && options.data !== undefined) {
    throw new CnnxError(
      '--dataset and --data both name a dataset; give one (--data for your own pictures)',
      'OPTION_CONFLICT',
    );
  }
  if (options.data !== undefined) {
    if (options.idxDir !== undefined) {
      throw new CnnxError('--idx-dir applies to --dataset; --data reads your own pictures', 'OPTION_CONFLICT');
    }
    const userOptions: UserDataOptions = {
      ...(options.testData !== undefined && { testPath: options.testData }),
      ...(options.channels !== undefined && { channels: options.channels }),
      ...(options.imageSize !== undefined && { size: options.imageSize }),
      ...(options.dataDir !== undefined && { dataDir: options.dataDir }),
      log,
    };
    return loadUserDataset(options.data, userOptions);
  }
  refuseUserDataOptions(options);
  if (options.dataset === undefined) {
    // As commander words a missing required option, naming the alternative too.
    command.error("error: required option '-d, --dataset <name>' not specified (or give --data <folder or CSV>)", {
      code: 'commander.missingMandatoryOptionValue',
    });
  }
  return loadDataset(options.dataset, {
    dataDir: options.dataDir,
    idxDir: options.idxDir,
    offline: options.offline,
    log,
  });
}

export function registerData(program: Command): void {
  const data = program.command('data').description('inspect a dataset (MNIST, Fashion-MNIST, or your own pictures)');
  const info = data
    .command('info')
    .description(
      "show a dataset's source, picture size, per-split and per-class counts, and checksum status (a built-in dataset, or your own pictures with --data)",
    )
    .option('-d, --dataset <name>', `dataset: ${DATASET_NAMES.join(' | ')}`, oneOf(DATASET_NAMES))
    .option('--json', 'print one JSON object');
  addUserDataOptions(addDataSourceOptions(info)).action(async (options: InfoOptions, command: Command) => {
    const dataset = await datasetOf(options, command);
    const perClass = (labels: Uint8Array) => classCounts(labels, dataset.classes.length);
    const train = { count: dataset.train.count, perClass: perClass(dataset.train.labels) };
    const test = { count: dataset.test.count, perClass: perClass(dataset.test.labels) };
    const user = 'testSource' in dataset ? dataset : undefined;
    const summary = {
      dataset: dataset.name,
      source: dataset.source,
      image: [dataset.train.rows, dataset.train.cols],
      channels: dataset.train.channels,
      classes: dataset.classes,
      splits: { train, test },
      files: dataset.files,
      ...(user && { path: user.path, trainSource: user.trainSource, testSource: user.testSource }),
    };
    if (options.json) {
      console.log(JSON.stringify(summary));
      return;
    }
    const { rows, cols, channels } = dataset.train;
    const shape = `${rows}x${cols}, ${channels === 1 ? '1 channel' : `${channels} channels`}`;
    console.log(`dataset   ${dataset.name} (${shape}, ${dataset.classes.length} classes)`);
    if (user) {
      console.log(`train     ${train.count} examples from ${user.trainSource}`);
      console.log(`test      ${test.count} examples from ${user.testSource}`);
    } else {
      console.log(`source    ${dataset.source}`);
      for (const [name, split] of Object.entries(summary.splits))
        console.log(`${name.padEnd(9)} ${split.count} examples`);
    }
    const width = Math.max(...dataset.classes.map((c) => c.length), 5);
    const index = Math.max(2, String(dataset.classes.length - 1).length);
    console.log(`\n${'class'.padEnd(width + index + 2)}${'train'.padStart(7)}${'test'.padStart(7)}`);
    dataset.classes.forEach((name, c) => {
      const row = `${String(c).padStart(index)}  ${name.padEnd(width)}`;
      console.log(`${row}${String(train.perClass[c]).padStart(7)}${String(test.perClass[c]).padStart(7)}`);
    });
    if (dataset.files.length > 0) {
      console.log('\nchecksums');
      for (const file of dataset.files) console.log(`  ${file.checksum.padEnd(12)} ${file.file}`);
    }
  });
}
