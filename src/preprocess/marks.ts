/**
 * The marks of an ink map: its connected groups of ink (8-connected, ink above half of full level), each with its
 * bounding box, area and stroke width, sorted into what may be writing and what is not: specks, runs along the
 * picture's edge (a desk or a shadow at the border of a photo), and blobs (a filled shape, a dot, a bar: thicker
 * than any MNIST digit's strokes for its size). Labelling uses an explicit typed-array stack, so any picture, even
 * one of a million dots, takes linear time and constant stack.
 */
import type { GrayImage } from './gray-image.js';

/** Ink pixels are those above half of full ink, as MNIST's digits are binarised at 127 for their statistics. */
export const INK_LEVEL = 127.5;

/**
 * Marks shorter than this fraction of the picture's long side are specks whatever the other marks are (noise, a
 * grid of dots): a digit that small (15 px of a 512 px picture) is not read.
 */
const MIN_MARK_FRACTION = 0.03;

/**
 * A mark is a blob when its stroke width is more than this fraction of its box's long side. Measured on the 60,000
 * MNIST training digits (binarised at 127): the fraction has median 0.098, 99.9th percentile 0.228, maximum 0.332;
 * a filled square or disc has 0.5.
 */
export const MAX_STROKE_FRACTION = 0.3;

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface Mark {
  box: Box;
  /** Pixel indices (y * width + x) of the mark's ink. */
  pixels: Int32Array;
  /** Ink pixels on the picture's outermost rows and columns. */
  edgePixels: number;
}

/** Why a mark is not writing, or `writing`. */
export type MarkKind = 'writing' | 'speck' | 'edge' | 'blob' | 'line';

/**
 * Stroke width of a set of ink pixels, in pixels: twice the area over the outline length (4-neighbour ink/background
 * boundaries). A stroke of width w and length L has area wL and outline about 2L.
 */
export function strokeWidth(isInk: (x: number, y: number) => boolean, box: Box): number {
  let area = 0;
  let outline = 0;
  for (let y = box.y; y < box.y + box.height; y++)
    for (let x = box.x; x < box.x + box.width; x++) {
      if (!isInk(x, y)) continue;
      area++;
      if (!isInk(x + 1, y)) outline++;
      if (!isInk(x - 1, y)) outline++;
      if (!isInk(x, y + 1)) outline++;
      if (!isInk(x, y - 1)) outline++;
    }
  return outline === 0 ? 0 : (2 * area) / outline;
}

/** Connected marks of `ink`, in the order of their first pixel (row-major). */
function findMarks(ink: GrayImage): Mark[] {
  const { width, height, data } = ink;
  const n = width * height;
  const label = new Int32Array(n).fill(-1);
  const stack = new Int32Array(n);
  const order = new Int32Array(n);
  let ordered = 0;
  const marks: Mark[] = [];
  for (let start = 0; start < n; start++) {
    if (data[start]! <= INK_LEVEL || label[start] !== -1) continue;
    const id = marks.length;
    const first = ordered;
    let top = 0;
    let x0 = width;
    let y0 = height;
    let x1 = -1;
    let y1 = -1;
    let edgePixels = 0;
    label[start] = id;
    stack[top++] = start;
    while (top > 0) {
      const p = stack[--top]!;
      order[ordered++] = p;
      const x = p % width;
      const y = (p - x) / width;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
      if (x === 0 || y === 0 || x === width - 1 || y === height - 1) edgePixels++;
      for (let dy = -1; dy <= 1; dy++) {
        const ny = y + dy;
        if (ny < 0 || ny >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          if (nx < 0 || nx >= width) continue;
          const q = ny * width + nx;
          if (label[q] === -1 && data[q]! > INK_LEVEL) {
            label[q] = id;
            stack[top++] = q;
          }
        }
      }
    }
    marks.push({
      box: { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 },
      pixels: order.slice(first, ordered),
      edgePixels,
    });
  }
  return marks;
}

/** The box around all of `marks`. */
export function unionBox(marks: readonly Mark[]): Box {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (const { box } of marks) {
    x0 = Math.min(x0, box.x);
    y0 = Math.min(y0, box.y);
    x1 = Math.max(x1, box.x + box.width - 1);
    y1 = Math.max(y1, box.y + box.height - 1);
  }
  return { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 };
}

/**
 * Whether `marks` together are a blob rather than strokes (a filled shape, a dot, a bar): of 4 pixels or more, and
 * thicker for their size than MAX_STROKE_FRACTION.
 */
export function isBlob(marks: readonly Mark[], imageWidth: number): boolean {
  return (
    marks.reduce((n, mark) => n + mark.pixels.length, 0) >= 4 && strokeFraction(marks, imageWidth) > MAX_STROKE_FRACTION
  );
}

/** Stroke width of `marks` together over their box's long side (see MAX_STROKE_FRACTION). */
export function strokeFraction(marks: readonly Mark[], imageWidth: number): number {
  const box = unionBox(marks);
  const mask = new Uint8Array(box.width * box.height);
  for (const mark of marks)
    for (const p of mark.pixels) mask[(Math.floor(p / imageWidth) - box.y) * box.width + (p % imageWidth) - box.x] = 1;
  const isInk = (x: number, y: number) =>
    x >= box.x && y >= box.y && x < box.x + box.width && y < box.y + box.height
      ? mask[(y - box.y) * box.width + x - box.x] === 1
      : false;
  return strokeWidth(isInk, box) / Math.max(box.width, box.height);
}

/**
 * Sorts marks: edge runs (more ink on the picture's border than a quarter of its mean side: a digit touches the
 * edge at a point, a surround or shadow runs along it), blobs (MAX_STROKE_FRACTION), then specks among the rest
 * (under 4 pixels or 4% of the largest mark's area, or shorter than 15% of the longest mark's long side: a 5's flat
 * top bar is long, a dot is short, and under MIN_MARK_FRACTION of the picture), and lines (flat, more than four
 * times wider than tall and wider than 1.5 times the tallest mark: an underline, a ruling, a form's frame, which no
 * digit is); what is left is writing.
 */
function classifyMarks(marks: readonly Mark[], ink: GrayImage): MarkKind[] {
  const edgeLimit = (ink.width + ink.height) / 8;
  const kinds: MarkKind[] = marks.map((mark) => {
    if (mark.edgePixels > edgeLimit) return 'edge';
    if (isBlob([mark], ink.width)) return 'blob';
    return 'writing';
  });
  let tallest = 0;
  marks.forEach((mark, i) => {
    if (kinds[i] === 'writing') tallest = Math.max(tallest, mark.box.height);
  });
  marks.forEach(({ box }, i) => {
    if (kinds[i] === 'writing' && box.width > 4 * box.height && box.width > 1.5 * tallest) kinds[i] = 'line';
  });
  let largest = 0;
  let longest = 0;
  marks.forEach((mark, i) => {
    if (kinds[i] !== 'writing') return;
    largest = Math.max(largest, mark.pixels.length);
    longest = Math.max(longest, mark.box.width, mark.box.height);
  });
  const minimum = MIN_MARK_FRACTION * Math.max(ink.width, ink.height);
  return marks.map((mark, i) => {
    if (kinds[i] !== 'writing') return kinds[i]!;
    const small = mark.pixels.length < Math.max(4, largest * 0.04);
    const short = Math.max(mark.box.width, mark.box.height) < Math.max(longest * 0.15, minimum);
    return small || short ? 'speck' : 'writing';
  });
}

/**
 * A straight rule is a run of ink along one row (or column) at least RULE_RUN of its mark's width (or height): no
 * handwritten digit string has one, a line under or through the writing, a form's box or a cheque's amount box does.
 */
const RULE_RUN = 0.6;

/** A box: straight runs along most of each of its four sides (a written 0 or 8 has none). */
const FRAME_RUN = 0.8;
/** ... drawn with a line no wider than this fraction of its short side (a typeface's bold 0 is straight too). */
const FRAME_STROKE = 0.1;
/** A box's side or wall runs across this much of it, at least. */
const WALL_RUN = 0.9;

/**
 * A mark's box as a mask, and its longest row run and column run: overall, and in the outer fifth of the box on each
 * side (a box's four sides).
 */
function runsOf(mark: Mark, imageWidth: number) {
  const { x: x0, y: y0, width: w, height: h } = mark.box;
  const mask = new Uint8Array(w * h);
  for (const p of mark.pixels) mask[(Math.floor(p / imageWidth) - y0) * w + (p % imageWidth) - x0] = 1;
  const rows = longestRuns(h, w, (y, x) => mask[y * w + x] === 1);
  const columns = longestRuns(w, h, (x, y) => mask[y * w + x] === 1);
  const most = (runs: Int32Array, from: number, to: number) => Math.max(0, ...runs.subarray(from, to));
  return {
    mask,
    row: most(rows, 0, h),
    column: most(columns, 0, w),
    top: most(rows, 0, Math.ceil(h / 5)),
    bottom: most(rows, Math.ceil(h - h / 5), h),
    left: most(columns, 0, Math.ceil(w / 5)),
    right: most(columns, Math.ceil(w - w / 5), w),
  };
}

/** The longest run of ink along each of `lines` lines of `length` pixels (`inked(line, position)`). */
function longestRuns(lines: number, length: number, inked: (line: number, position: number) => boolean): Int32Array {
  const longest = new Int32Array(lines);
  for (let line = 0; line < lines; line++)
    for (let position = 0, run = 0; position < length; position++) {
      run = inked(line, position) ? run + 1 : 0;
      if (run > longest[line]!) longest[line] = run;
    }
  return longest;
}

/**
 * Erases from `ink` (in place) the runs of `mark` along rows at least `rowRun` long and along columns at least
 * `columnRun` long, with their ragged edges and the soft edge beside them, but not where a stroke crosses the rule
 * (ink on both sides of it: a digit written through a line keeps its stroke); returns whether any ink went.
 */
function eraseRuns(ink: GrayImage, mark: Mark, mask: Uint8Array, rowRun: number, columnRun: number): boolean {
  const { x: x0, y: y0, width: w, height: h } = mark.box;
  const at = (x: number, y: number) => x >= 0 && y >= 0 && x < w && y < h && mask[y * w + x] === 1;
  const rows = new Uint8Array(w * h);
  const columns = new Uint8Array(w * h);
  for (let y = 0; y < h; y++)
    for (let x = 0; x <= w; x++) {
      let start = x;
      while (x < w && mask[y * w + x]) x++;
      if (x - start >= rowRun) for (; start < x; start++) rows[y * w + start] = 1;
    }
  for (let x = 0; x < w; x++)
    for (let y = 0; y <= h; y++) {
      let start = y;
      while (y < h && mask[y * w + x]) y++;
      if (y - start >= columnRun) for (; start < y; start++) columns[start * w + x] = 1;
    }
  // Across the rule (down a column for a row rule): the ink run through its band. Ink that runs on past the band by
  // more than the band is thick, on both sides, is a stroke crossing the rule: kept. Otherwise the band goes, and
  // with it the ink beside it no further than the band is thick (the rule's ragged edge, where a scan's line is cut
  // at the ink level), but not a stroke that ends on the rule (a digit written on the line).
  const across = (band: Uint8Array, vertical: boolean) => {
    const [outer, inner] = vertical ? [w, h] : [h, w];
    const cell = (o: number, i: number) => (vertical ? i * w + o : o * w + i);
    const inMark = (o: number, i: number) => i >= 0 && i < inner && mask[cell(o, i)] === 1;
    for (let o = 0; o < outer; o++)
      for (let i = 0; i < inner; i++) {
        if (band[cell(o, i)] !== 1) continue;
        const start = i;
        while (i < inner && band[cell(o, i)] === 1) i++;
        const thick = i - start;
        let before = start;
        while (inMark(o, before - 1)) before--;
        let after = i;
        while (inMark(o, after)) after++;
        const [above, below] = [start - before, after - i];
        if (above > thick + 1 && below > thick + 1) {
          for (let k = start; k < i; k++) band[cell(o, k)] = 2; // a crossing stroke keeps its ink
          continue;
        }
        if (above <= thick + 1) for (let k = before; k < start; k++) band[cell(o, k)] = 1;
        if (below <= thick + 1) for (let k = i; k < after; k++) band[cell(o, k)] = 1;
        i = after - 1;
      }
  };
  across(rows, true);
  across(columns, false);
  let erased = false;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      if (rows[y * w + x] !== 1 && columns[y * w + x] !== 1) continue;
      erased = true;
      for (const [dx, dy] of [
        [0, 0],
        [1, 0],
        [-1, 0],
        [0, 1],
        [0, -1],
      ] as const) {
        const [ix, iy] = [x0 + x + dx, y0 + y + dy];
        if (ix < 0 || iy < 0 || ix >= ink.width || iy >= ink.height) continue;
        // The rule's own pixel, or its soft edge; not the ink of a stroke beside it.
        if ((dx === 0 && dy === 0) || !at(x + dx, y + dy)) ink.data[iy * ink.width + ix] = 0;
      }
    }
  return erased;
}

/**
 * The marks of an ink map and their kinds, with straight rules taken out first: a line the digits sit on or that
 * runs through them (a mark much wider than tall with a straight run across most of its width: its long row runs
 * are erased, and the digits, cut where the line crossed them, come back as marks of their own, their pieces joined
 * again by the segmentation), and a box around the writing or a form's row of boxes (a mark with straight runs
 * along its four sides that encloses other marks: its long row and column runs are erased). `ink`
 * itself is changed only when there was a rule; `rules` counts the rules and boxes taken out.
 */
export function findWriting(ink: GrayImage): { marks: Mark[]; kinds: MarkKind[]; rules: number } {
  const marks = findMarks(ink);
  const kinds = classifyMarks(marks, ink);
  let rules = 0;
  // A rule is longer than a digit is wide (a 5's flat top stroke is not one): than the tallest mark is tall.
  let tallest = 0;
  marks.forEach((mark, i) => {
    if (kinds[i] !== 'speck' && kinds[i] !== 'edge') tallest = Math.max(tallest, mark.box.height);
  });
  for (const mark of marks) {
    const { width: w, height: h } = mark.box;
    if (w < 8 || h < 8 || mark.pixels.length < 16) continue;
    const runs = runsOf(mark, ink.width);
    // Thin sides: a bold 0 of a typeface is straight along its four sides too, but its strokes are thick.
    const thin = strokeFraction([mark], ink.width) * Math.max(w, h) <= FRAME_STROKE * Math.min(w, h);
    const box =
      thin &&
      [runs.top, runs.bottom].every((run) => run >= FRAME_RUN * w) &&
      [runs.left, runs.right].every((run) => run >= FRAME_RUN * h);
    if (box && encloses(mark, marks)) {
      // The box's sides and, in a row of boxes, the walls between them: runs across nearly all of it (a digit's stem
      // that touches one side is shorter).
      if (eraseRuns(ink, mark, runs.mask, WALL_RUN * w, WALL_RUN * h)) rules++;
    } else if (runs.row >= RULE_RUN * w && w >= 2.5 * h && w > 1.5 * tallest) {
      if (eraseRuns(ink, mark, runs.mask, RULE_RUN * w, Infinity)) rules++;
    }
  }
  if (rules === 0) return { marks, kinds, rules };
  const again = findMarks(ink);
  return { marks: again, kinds: classifyMarks(again, ink), rules };
}

/** Whether the box of `mark` holds the whole box of another mark of at least 4 pixels. */
function encloses(mark: Mark, marks: readonly Mark[]): boolean {
  const { x, y, width, height } = mark.box;
  return marks.some(
    (other) =>
      other !== mark &&
      other.pixels.length >= 4 &&
      other.box.x > x &&
      other.box.y > y &&
      other.box.x + other.box.width < x + width &&
      other.box.y + other.box.height < y + height,
  );
}
