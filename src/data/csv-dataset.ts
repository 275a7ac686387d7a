/**
 * Pictures from a CSV file, one per row: a label column and pixel columns, each pixel an integer 0-255 (the layout
 * of Kaggle's digit recognizer and of the Fashion-MNIST CSVs).
 *
 * - Header: the first row is a header when it names a label column (`label` in any case; or `class`, `target`, `y`,
 *   `digit`, `category`) or when none of its fields is a number. The label column is the one so named, wherever it
 *   is, else the first; a header whose first column is named as a pixel's (`pixel0`, as in Kaggle's unlabelled
 *   test.csv) and none as a label is a fault, since a pixel would be read as the label. Without a header, the first
 *   column. Label names are compared in composed Unicode (NFC).
 * - Pixels: row-major; an RGB picture gives r, g, b of each pixel in turn (HWC, as a split stores them).
 * - Layout (csvGeometry), from the number N of pixel columns, the `size` [h, w] asked for and the `channels` asked
 *   for. A CSV's pictures are read as RGB only with `channels` 3 (--channels 3): a gray 24x32 CSV (768 columns) is
 *   also 3 x 16 x 16, and guessing RGB would misread it without a word. In order:
 *   1. with `size`: N = h*w*c (c = `channels`, else 1) is the CSV's own layout, h x w with c channels; with
 *      `channels` 3, N = h*w is too (gray h x w, made RGB);
 *   2. N = s*s is a gray s x s picture (then resized to `size`, if given);
 *   3. with `channels` 3, N = 3*s*s is an RGB s x s picture (then resized to `size`); no N is both s*s and 3*t*t;
 *   4. anything else is a fault saying what N would fit (and, for N = 3*s*s, to give --channels 3).
 *   So `size` names the CSV's own size when it fits N, and otherwise the size a square CSV is resized to.
 * - Labels (csvClasses): all whole numbers 0 to 254, or all names, so that no label silently shifts a class index.
 *   Whole numbers (digits only, leading zeros dropped) are the class index: the classes are "0", "1", ... up to the
 *   largest (in training data every value in between needs rows). Names (labels that do not parse as a number,
 *   e.g. `cat`, `1st`) give the classes in code point order. A label that parses as a number but is not a whole
 *   number 0-254 (`1.0`, `-1`, `1e2`, `0x1F`), or a mix of numbers and names, is a fault naming the first such row.
 * - The file is read line by line (a stream), the pixels into one byte array (at most the largest Uint8Array this
 *   Node allows, buffer.constants.MAX_LENGTH); blank lines are skipped, a UTF-8 BOM is dropped, and fields may be
 *   quoted ("a ""b""").
 */
import { constants } from 'node:buffer';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { CnnxError, whyUnreadable } from '../common/index.js';

/** Header names of the label column, in order of preference (any case). */
const LABEL_NAMES: readonly string[] = ['label', 'class', 'target', 'y', 'digit', 'category'];
/** A header name of a pixel column: `pixel0`, `p12`, `px_3`, `784`. */
const PIXEL_NAME = /^(pixel|px|p)?[\s_-]?\d+$/i;
import { pictureToPixels, type PixelImage } from '../preprocess/index.js';
import { byCodePoint, type RenderTarget } from './image-folder.js';
import { MAX_CLASSES } from './split.js';

/** A CSV file's rows, parsed and checked. */
export interface CsvTable {
  /** The file, absolute. */
  file: string;
  count: number;
  /** Pixel columns per row. */
  columns: number;
  /** [count, columns] bytes, as the rows give them. */
  pixels: Uint8Array;
  /** Each row's label, trimmed and unquoted. */
  labels: string[];
  /** The line (1-based) of each distinct label's first row. */
  firstLine: Map<string, number>;
  /** The header's name of the label column; undefined without a header. */
  labelName?: string;
}

const fault = (file: string, line: number, why: string) =>
  new CnnxError(`${file} line ${line}: ${why}`, 'DATA_BAD_CSV');

/** `n` things in words: 1 byte, 2,000 bytes. */
const count = (n: number, what: string) => `${n.toLocaleString('en-US')} ${what}${n === 1 ? '' : 's'}`;

/** Fields of a line with double quotes: `"a,b"` is one field, `""` inside quotes one quote. */
function splitQuoted(line: string): string[] {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      fields.push(field);
      field = '';
    } else field += c;
  }
  fields.push(field);
  return fields;
}

const splitFields = (line: string) => (line.includes('"') ? splitQuoted(line) : line.split(','));

/** A pixel field's value, or undefined when it is not an integer 0-255. */
function pixelValue(field: string): number | undefined {
  const text = field.trim();
  if (!/^\d{1,3}$/.test(text)) return undefined;
  const value = Number(text);
  return value <= 255 ? value : undefined;
}

/** What is wrong with a row, checked field by field (the slow path, for quoted lines and for faults). */
function rowFault(fields: string[], expected: number, labelColumn: number): string | undefined {
  if (fields.length !== expected)
    return `${fields.length} fields, expected ${expected} (a label and ${expected - 1} pixels)`;
  if (fields[labelColumn]!.trim() === '') return 'empty label';
  for (const [k, field] of fields.entries()) {
    if (k !== labelColumn && pixelValue(field) === undefined) {
      return `field ${k + 1} is "${field.length > 20 ? `${field.slice(0, 20)}...` : field}", not a pixel value (an integer 0-255)`;
    }
  }
  return undefined;
}

/**
 * Reads an unquoted row's pixels into `out` at `offset` and returns its label; undefined when the row is not
 * plainly valid (the caller then finds the fault field by field).
 */
function scanRow(line: string, expected: number, labelColumn: number, out: Uint8Array, offset: number) {
  let field = 0;
  let value = 0;
  let digits = 0;
  let after = false; // spaces after the digits
  let valid = true;
  let start = 0;
  let label: string | undefined;
  let p = offset;
  for (let i = 0; i <= line.length; i++) {
    const c = i < line.length ? line.charCodeAt(i) : 44;
    if (c === 44) {
      if (field === labelColumn) label = line.slice(start, i).trim();
      else if (digits === 0 || digits > 3 || value > 255 || field >= expected) valid = false;
      else out[p++] = value;
      field++;
      value = digits = 0;
      after = false;
      start = i + 1;
    } else if (field !== labelColumn) {
      if (c >= 48 && c <= 57 && !after) {
        value = value * 10 + c - 48;
        digits++;
      } else if (c === 32 || c === 9) after = digits > 0;
      else valid = false;
    }
  }
  return valid && field === expected && label ? label : undefined;
}

/**
 * Refuses a UTF-16 file (a byte-order mark FF FE or FE FF, or the zero bytes of UTF-16 text), which read as UTF-8
 * would fault on its first field for a reason that names none of this; Excel's "Unicode text" writes one.
 * @throws CnnxError DATA_BAD_CSV saying to save it as UTF-8.
 */
async function refuseUtf16(file: string, unreadable: (error: unknown) => CnnxError): Promise<void> {
  const handle = await open(file, 'r').catch((error: unknown) => {
    throw unreadable(error);
  });
  const start = Buffer.alloc(64);
  const { bytesRead } = await handle.read(start, 0, start.length, 0).finally(() => handle.close());
  const head = start.subarray(0, bytesRead);
  const bom = (head[0] === 0xff && head[1] === 0xfe) || (head[0] === 0xfe && head[1] === 0xff);
  if (bom || head.includes(0)) {
    throw new CnnxError(
      `${file}: the text is UTF-16 (or holds zero bytes), not UTF-8: save the CSV as UTF-8 (in Excel: "CSV UTF-8")`,
      'DATA_BAD_CSV',
    );
  }
}

/**
 * Reads and checks every row of a CSV file.
 * @throws CnnxError naming the file (and line): DATA_UNREADABLE, DATA_BAD_CSV for an empty file, UTF-16 text, a
 *   header with no row or with no label column, a row with the wrong number of fields, an empty label, or a pixel
 *   that is not an integer 0-255;
 *   DATA_TOO_LARGE when the pixels would not fit in one Uint8Array
 */
export async function readCsvTable(file: string): Promise<CsvTable> {
  const unreadable = (error: unknown) =>
    new CnnxError(`${file}: cannot read (${whyUnreadable(error)})`, 'DATA_UNREADABLE');
  const info = await stat(file).catch((error: unknown) => {
    throw unreadable(error);
  });
  await refuseUtf16(file, unreadable);
  const stream = createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 });
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  let expected = 0;
  let labelColumn = 0;
  let labelName: string | undefined;
  let columns = 0;
  let pixels = new Uint8Array(0);
  const labels: string[] = [];
  const firstLine = new Map<string, number>();
  let lineNumber = 0;
  const addRow = (line: string) => {
    let offset = labels.length * columns;
    // The pixels are one Uint8Array: at most this many rows fit (Node 20: 2^32 bytes).
    const mostRows = Math.floor(constants.MAX_LENGTH / columns);
    if (labels.length >= mostRows) {
      throw new CnnxError(
        `${file} line ${lineNumber}: the pixel values up to this row take ${count(offset + columns, 'byte')}, more than one array may hold in Node ${process.version} (${count(constants.MAX_LENGTH, 'byte')}); use fewer rows (the data is held in memory, not streamed)`,
        'DATA_TOO_LARGE',
      );
    }
    if (pixels.length === 0) {
      // Room for as many rows as the file's size suggests from the first one, so the array is seldom grown.
      const rows = Math.min(Math.ceil((info.size / (line.length + 1)) * 1.1 + 16), mostRows);
      pixels = new Uint8Array(rows * columns);
    } else if (offset + columns > pixels.length) {
      const rows = Math.min(Math.max(Math.ceil((pixels.length / columns) * 1.5), labels.length + 1024), mostRows);
      const grown = new Uint8Array(rows * columns);
      grown.set(pixels);
      pixels = grown;
    }
    let label = line.includes('"') ? undefined : scanRow(line, expected, labelColumn, pixels, offset);
    if (label === undefined) {
      const fields = splitFields(line);
      const why = rowFault(fields, expected, labelColumn);
      if (why !== undefined) throw fault(file, lineNumber, why);
      label = fields[labelColumn]!.trim();
      for (const [k, field] of fields.entries()) if (k !== labelColumn) pixels[offset++] = pixelValue(field)!;
    }
    labels.push(label);
    if (!firstLine.has(label)) firstLine.set(label, lineNumber);
  };
  try {
    for await (const raw of lines) {
      lineNumber++;
      const line = lineNumber === 1 && raw.startsWith('\uFEFF') ? raw.slice(1) : raw;
      if (line.trim() === '') continue;
      if (expected === 0) {
        const fields = splitFields(line);
        expected = fields.length;
        columns = expected - 1;
        if (columns === 0) {
          throw fault(file, lineNumber, 'one field; a row is a label, then pixel values (integers 0-255)');
        }
        const names = fields.map((field) => field.trim().toLowerCase());
        const named = LABEL_NAMES.map((name) => names.indexOf(name)).find((k) => k >= 0) ?? -1;
        labelColumn = Math.max(named, 0);
        const numbers = fields.filter((field, k) => k !== labelColumn && /^\s*-?\d+(\.\d*)?\s*$/.test(field));
        if (named < 0 && numbers.length === 0 && PIXEL_NAME.test(fields[0]!.trim())) {
          // A header whose first column is a pixel's (Kaggle's unlabelled test.csv): taking it for the labels would
          // read every row wrong without a word.
          throw fault(
            file,
            lineNumber,
            `a header that names no label column (${fields.slice(0, 3).join(',')},...): name the column of class labels "label", as Kaggle's and Fashion-MNIST's CSVs do (a CSV without labels cannot be trained or evaluated on)`,
          );
        }
        if (named >= 0 || numbers.length === 0) {
          labelName = fields[labelColumn]!.trim();
          continue;
        }
      }
      addRow(line);
    }
  } catch (error) {
    if (error instanceof CnnxError) throw error;
    throw unreadable(error);
  } finally {
    lines.close();
    stream.destroy();
  }
  if (expected === 0) {
    throw new CnnxError(
      `${file}: empty file; expected a row per picture: a label, then pixel values 0-255`,
      'DATA_BAD_CSV',
    );
  }
  if (labels.length === 0) throw new CnnxError(`${file}: a header and no rows`, 'DATA_BAD_CSV');
  const used = labels.length * columns;
  return {
    file,
    count: labels.length,
    columns,
    pixels: pixels.length > used * 1.05 ? pixels.slice(0, used) : pixels.subarray(0, used),
    labels,
    firstLine,
    ...(labelName === undefined ? {} : { labelName }),
  };
}

/** A CSV's classes and each row's index into them. */
export interface CsvClasses {
  classes: string[];
  labels: Uint8Array;
  /** The line of each class's first row. */
  lines: number[];
}

/** Labels must be all whole numbers or all names (see the module's comment): whole numbers, else names. */
function labelsAreWholeNumbers(table: CsvTable): boolean {
  const must = `labels must be whole numbers from 0 to ${MAX_CLASSES - 1} (the class index) or names, not both, so that no class index shifts`;
  let firstNumber: [string, number] | undefined;
  let firstName: [string, number] | undefined;
  // firstLine holds each distinct label in the order of its first row, so the first fault found is the first row's.
  for (const [label, line] of table.firstLine) {
    const whole = /^\d+$/.test(label);
    const number = Number.isFinite(Number(label));
    if (number && !whole) {
      throw fault(
        table.file,
        line,
        `label "${label}" is a number but not a whole number from 0 to ${MAX_CLASSES - 1}; ${must}`,
      );
    }
    if (number) firstNumber ??= [label, line];
    else firstName ??= [label, line];
    if (firstNumber !== undefined && firstName !== undefined) {
      const [name, nameLine] = firstName;
      const [value, valueLine] = firstNumber;
      const why =
        nameLine > valueLine
          ? `label "${name}" is a name, but line ${valueLine}'s label "${value}" is a number`
          : `label "${value}" is a number, but line ${nameLine}'s label "${name}" is a name`;
      throw fault(table.file, Math.max(nameLine, valueLine), `${why}; ${must}`);
    }
  }
  return firstName === undefined;
}

/**
 * The classes of a table's labels (see the module's comment). With `dense` (training data), integer labels must
 * cover every value from 0 to the largest.
 * @throws CnnxError naming the file: DATA_BAD_CSV (and the line) for a label that is a number but not a whole number
 *   0-254, or labels that mix numbers and names; DATA_CLASS_COUNT for more than MAX_CLASSES classes or an integer
 *   label over MAX_CLASSES - 1; DATA_EMPTY_CLASS for a value with no rows (with `dense`)
 */
export function csvClasses(table: CsvTable, dense: boolean): CsvClasses {
  const distinct = [...table.firstLine.keys()];
  const integers = labelsAreWholeNumbers(table);
  // Names in composed Unicode (NFC), as image folders' class names: the same name typed on two systems is one class.
  const nameOf = integers ? (label: string) => String(Number(label)) : (label: string) => label.normalize('NFC');
  const lineOf = new Map<string, number>();
  for (const [label, line] of table.firstLine) {
    const name = nameOf(label);
    lineOf.set(name, Math.min(line, lineOf.get(name) ?? Infinity));
  }
  let classes: string[];
  if (integers) {
    const values = [...lineOf.keys()].map(Number).sort((a, b) => a - b);
    const max = values.at(-1)!;
    if (max >= MAX_CLASSES) {
      throw new CnnxError(
        `${table.file} line ${lineOf.get(String(max))}: label ${max}; integer labels run from 0 to ${MAX_CLASSES - 1} (at most ${MAX_CLASSES} classes)`,
        'DATA_CLASS_COUNT',
      );
    }
    if (dense) {
      const missing = Array.from({ length: max + 1 }, (_, value) => value).find((value) => !lineOf.has(String(value)));
      if (missing !== undefined) {
        throw new CnnxError(
          `${table.file}: no row has label ${missing}, but labels run from 0 to ${max}: class ${missing} would be empty; renumber the labels or add rows`,
          'DATA_EMPTY_CLASS',
        );
      }
      classes = Array.from({ length: max + 1 }, (_, value) => String(value));
    } else classes = values.map(String);
  } else {
    classes = [...lineOf.keys()].sort(byCodePoint);
    if (classes.length > MAX_CLASSES) {
      throw new CnnxError(
        `${table.file}: ${classes.length} distinct labels; at most ${MAX_CLASSES} classes`,
        'DATA_CLASS_COUNT',
      );
    }
  }
  const index = new Map(classes.map((name, i) => [name, i]));
  const byLabel = new Map(distinct.map((label) => [label, index.get(nameOf(label))!]));
  const labels = Uint8Array.from(table.labels, (label) => byLabel.get(label)!);
  return { classes, labels, lines: classes.map((name) => lineOf.get(name)!) };
}

/** A CSV picture's own size and channels. */
export interface CsvGeometry {
  height: number;
  width: number;
  channels: 1 | 3;
}

/**
 * The size and channels of the table's pictures from its number of pixel columns, the size and the channels asked
 * for (see the module's comment: RGB only with `channels` 3).
 * @throws CnnxError DATA_BAD_CSV when the count makes no picture
 */
export function csvGeometry(table: CsvTable, size?: readonly [number, number], channels?: 1 | 3): CsvGeometry {
  const n = table.columns;
  const rgb = channels === 3;
  if (size !== undefined) {
    const [height, width] = size;
    if (rgb && n === 3 * height * width) return { height, width, channels: 3 };
    if (n === height * width) return { height, width, channels: 1 };
  }
  const side = (count: number) => {
    const s = Math.round(Math.sqrt(count));
    return s * s === count ? s : undefined;
  };
  const gray = side(n);
  if (gray !== undefined) return { height: gray, width: gray, channels: 1 };
  const rgbSide = n % 3 === 0 ? side(n / 3) : undefined;
  if (rgb && rgbSide !== undefined) return { height: rgbSide, width: rgbSide, channels: 3 };
  const fits = ['a square gray picture (side x side values, e.g. 784 for 28x28)'];
  if (rgb) fits.push('a square RGB one (3 x side x side values)');
  if (size !== undefined) {
    const [height, width] = size;
    fits.push(`a ${height}x${width} one (${height * width}${rgb ? ` or, RGB, ${3 * height * width}` : ''} values)`);
  }
  const [asRgbH, asRgbW] = size !== undefined && n === 3 * size[0] * size[1] ? size : [rgbSide, rgbSide];
  const hint =
    asRgbH !== undefined && !rgb
      ? `; ${n} = 3 x ${asRgbH} x ${asRgbW}: if the pictures are RGB ${asRgbH}x${asRgbW}, give --channels 3`
      : '';
  throw new CnnxError(
    `${table.file}: ${n} pixel columns are not ${fits.join(', nor ')}; give the pictures' own size with --image-size HxW${hint}`,
    'DATA_BAD_CSV',
  );
}

/**
 * The table's pictures at `target` ([count, height, width, channels] bytes, converted with pictureToPixels when
 * they differ from `own`). With `stop`, resolves undefined as soon as `stop` is true of a row's picture.
 */
export function renderCsv(
  table: CsvTable,
  own: CsvGeometry,
  target: RenderTarget,
  stop?: (picture: PixelImage) => boolean,
): Uint8Array | undefined {
  const same = own.channels === target.channels && own.height === target.height && own.width === target.width;
  if (same && stop === undefined) return table.pixels;
  const size = target.height * target.width * target.channels;
  const out = same ? table.pixels : new Uint8Array(table.count * size);
  for (let i = 0; i < table.count; i++) {
    const data = table.pixels.subarray(i * table.columns, (i + 1) * table.columns);
    const picture = { width: own.width, height: own.height, channels: own.channels, data };
    if (stop?.(picture)) return undefined;
    if (!same) out.set(pictureToPixels(picture, target.channels, target.height, target.width), i * size);
  }
  return out;
}
