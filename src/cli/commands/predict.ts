/**
 * `cnnx predict`: classify pictures (PNG, JPEG, WebP) with an ONNX model, or read the handwritten digit string in
 * each (`--read-digits`, as the server's read-digits route does); prints the class name and top-3, the digits read,
 * or why a picture holds nothing to classify (blank, or ink that is not a digit), as /classify's 422 says. Each
 * picture is prepared by the model's own procedure (its `cnnx.preprocess` metadata): MNIST's for digits, a plain fit
 * for Fashion-MNIST, and for a model trained on the user's pictures the picture resized to its channels (gray or RGB)
 * and size. Pictures are files, every picture file of a folder (sorted), or `-` for standard input; they are read
 * CHUNK at a time, so a folder of any size fits in memory. A picture that cannot be read or decoded gets an error line
 * (and `{"file", "error", "code"}` with --json) and exit status 1; the others are still classified.
 */
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { CnnxError, whyUnreadable } from '../../common/index.js';
import { byCodePoint, decodeImage, isPicture } from '../../data/index.js';
import type { PixelImage } from '../../preprocess/index.js';
import {
  classifyImages,
  CUDA_HELP,
  DIGIT_THRESHOLD,
  EP_NAMES,
  isDigitModel,
  openSession,
  readDigitString,
  readOnnxModel,
  type EpName,
} from '../../runtime/index.js';
import { oneOf, probability } from '../options.js';

/** Pictures decoded and classified at a time. */
const CHUNK = 64;

/** The name `-` (standard input) is printed with. */
const STDIN = '-';

interface PredictFlags {
  model: string;
  ep: EpName;
  json?: boolean;
  readDigits?: boolean;
  threshold: number;
}

export function registerPredict(program: Command): void {
  program
    .command('predict')
    .description('classify pictures with an ONNX model, or read the digit string in each')
    .argument(
      '<pictures...>',
      "PNG, JPEG or WebP files, colour or gray, prepared as the model's metadata says (for digits: dark ink on light " +
        'paper or light on dark both work); a folder stands for its picture files, "-" for standard input',
    )
    .requiredOption('-m, --model <file.onnx>', 'ONNX model')
    .option('--ep <name>', `execution provider: ${EP_NAMES.join(' | ')}`, oneOf(EP_NAMES as EpName[]), 'cpu')
    .option(
      '--read-digits',
      'read each picture as a handwritten digit string (a cheque amount, a number on a slip): digit models only',
    )
    .option(
      '--threshold <p>',
      'with --read-digits: a digit less probable than this reads "?" (the reject option)',
      probability,
      DIGIT_THRESHOLD,
    )
    .option('--json', 'print one JSON line per picture')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  cnnx predict -m models/lenet5-relu-mnist.onnx digit.png scans/',
        '  cnnx predict -m models/lenet5-relu-mnist.onnx --read-digits cheque-amount.jpg',
        '  scanimage --format=png | cnnx predict -m models/lenet5-relu-mnist.onnx --read-digits -',
        '',
        `--ep cuda: ${CUDA_HELP}`,
      ].join('\n'),
    )
    .action(async (pictures: string[], flags: PredictFlags) => {
      const files = await listPictures(pictures);
      const { bytes, signature } = await readOnnxModel(flags.model);
      if (flags.readDigits && !isDigitModel(signature)) {
        throw new CnnxError(
          `${flags.model} is not a digit model (its pictures are prepared by '${signature.procedure}'): ` +
            '--read-digits reads handwritten digits only; leave it out to classify each picture',
          'NOT_A_DIGIT_MODEL',
        );
      }
      const session = await openSession(bytes, { ep: flags.ep });
      try {
        for (let start = 0; start < files.length; start += CHUNK) {
          const decoded = await decodeAll(files.slice(start, start + CHUNK));
          const readable = decoded.flatMap((entry) => ('image' in entry ? [entry.image] : []));
          const answers: (Answer | CnnxError)[] = [];
          if (flags.readDigits) {
            for (const image of readable) {
              answers.push(
                await readDigitString(session, signature, image, flags.threshold).catch((error: unknown) => {
                  if (!(error instanceof CnnxError)) throw error;
                  return error;
                }),
              );
            }
          } else if (readable.length > 0) {
            answers.push(...(await classifyImages(session, signature, readable)));
          }
          // In the order the pictures were given, failures included.
          let next = 0;
          for (const entry of decoded) {
            const answer = 'image' in entry ? answers[next++]! : entry.error;
            if (answer instanceof CnnxError) failed(entry.file, answer, flags.json);
            else report(entry.file, answer, flags.json);
          }
        }
      } finally {
        await session.release();
      }
    });
}

/**
 * The pictures the arguments name, in order: a file as given, a folder's picture files (by extension, not hidden,
 * sorted by code point; its sub-folders are not searched), `-` once for standard input.
 * @throws CnnxError BAD_OPTION for `-` given twice; DATA_NOT_FOUND for a folder with no pictures; DATA_UNREADABLE for
 *   a folder that cannot be listed.
 */
async function listPictures(paths: string[]): Promise<string[]> {
  if (paths.filter((path) => path === STDIN).length > 1) {
    throw new CnnxError('"-" (standard input) may be given once', 'BAD_OPTION');
  }
  const files: string[] = [];
  for (const path of paths) {
    if (path === STDIN) {
      files.push(path);
      continue;
    }
    // A path that is not there is a file whose read fails in its turn, with its own error line.
    const info = await stat(path).catch(() => undefined);
    if (!info?.isDirectory()) {
      files.push(path);
      continue;
    }
    const entries = await readdir(path, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
      throw new CnnxError(`${path}: cannot list (${whyUnreadable(error)})`, 'DATA_UNREADABLE');
    });
    const candidates = entries.filter((entry) => !entry.name.startsWith('.') && isPicture(entry.name));
    // Regular files only (through links too): a FIFO or a device named like a picture would wait or never end.
    const regular = await Promise.all(
      candidates.map((entry) =>
        stat(join(path, entry.name)).then(
          (info) => info.isFile(),
          () => false,
        ),
      ),
    );
    const names = candidates
      .filter((_, i) => regular[i])
      .map((entry) => entry.name)
      .sort(byCodePoint);
    if (names.length === 0) {
      const folders = entries.filter((entry) => entry.isDirectory() && !entry.name.startsWith('.')).length;
      throw new CnnxError(
        `${path}: no .png, .jpg, .jpeg or .webp files in this folder` +
          (folders > 0 ? ` (its ${folders} sub-folder${folders === 1 ? ' is' : 's are'} not searched: name them)` : ''),
        'DATA_NOT_FOUND',
      );
    }
    files.push(...names.map((name) => join(path, name)));
  }
  return files;
}

/** Reads and decodes `files` at once: each picture, or why it could not be read. */
async function decodeAll(
  files: string[],
): Promise<({ file: string; image: PixelImage } | { file: string; error: CnnxError })[]> {
  const settled = await Promise.allSettled(
    files.map(async (file) => {
      const data = await readLimited(file).catch((error: NodeJS.ErrnoException) => {
        if (error instanceof CnnxError) throw error;
        throw new CnnxError(`${file}: cannot read (${whyUnreadable(error)})`, 'BAD_IMAGE');
      });
      return decodeImage(data, file === STDIN ? 'standard input' : file);
    }),
  );
  return files.map((file, i) => {
    const outcome = settled[i]!;
    if (outcome.status === 'fulfilled') return { file, image: outcome.value };
    if (!(outcome.reason instanceof CnnxError)) throw outcome.reason;
    return { file, error: outcome.reason };
  });
}

/** The most bytes a picture file may have: far more than any photo (`cnnx serve` takes 8 MiB by default). */
const MAX_PICTURE_BYTES = 64 * 2 ** 20;

/**
 * The bytes of a picture file, or of standard input for `-`, at most MAX_PICTURE_BYTES of them (a device or a pipe
 * that never ends is refused when it passes that).
 * @throws CnnxError BAD_OPTION for `-` on a terminal; PAYLOAD_TOO_LARGE past the limit; the stream's errors.
 */
async function readLimited(file: string): Promise<Buffer> {
  if (file === STDIN && process.stdin.isTTY) {
    throw new CnnxError('"-" reads a picture from standard input, which is a terminal: pipe one in', 'BAD_OPTION');
  }
  const stream = file === STDIN ? process.stdin : createReadStream(file);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream) {
      size += (chunk as Buffer).length;
      if (size > MAX_PICTURE_BYTES) {
        throw new CnnxError(
          `${file === STDIN ? 'standard input' : file} holds more than ${MAX_PICTURE_BYTES / 2 ** 20} MiB, more than a picture`,
          'PAYLOAD_TOO_LARGE',
        );
      }
      chunks.push(chunk as Buffer);
    }
  } finally {
    if (file !== STDIN) (stream as ReturnType<typeof createReadStream>).destroy();
  }
  return Buffer.concat(chunks, size);
}

function failed(file: string, error: CnnxError, json?: boolean): void {
  // A reading's error ("found 70 pieces...") names no file; a decoding error starts with it.
  const named = error.message.startsWith(file === STDIN ? 'standard input' : file);
  console.error(`cnnx: ${named ? '' : `${file}: `}${error.message}`);
  if (json) console.log(JSON.stringify({ file, error: error.message, code: error.code }));
  process.exitCode = 1;
}

type Answer = Awaited<ReturnType<typeof classifyImages>>[number] | Awaited<ReturnType<typeof readDigitString>>;

function report(file: string, answer: Answer, json?: boolean): void {
  if (json) {
    console.log(JSON.stringify({ file, ...answer }));
  } else if ('nothing' in answer) {
    // On the command line, a digit string is read with --read-digits.
    const nothing = answer.nothing.replace('read by read-digits', 'read with --read-digits');
    console.log(`${file}: nothing to classify (${nothing})`);
  } else if ('text' in answer) {
    const ignored = answer.ignored > 0 ? `, ${answer.ignored} mark${answer.ignored === 1 ? '' : 's'} left out` : '';
    const read = answer.digits.length === 0 ? 'no digits' : JSON.stringify(answer.text);
    const unsure = [...answer.text].filter((c) => c === '?').length;
    const note = unsure > 0 ? ` (${unsure} below the threshold: ?)` : '';
    console.log(`${file}: ${read}${note}${ignored}`);
  } else {
    const top = answer.top.map((t) => `${t.class} ${(t.probability * 100).toFixed(1)}%`).join(', ');
    console.log(`${file}: ${answer.class}  (top-3: ${top})`);
  }
}
