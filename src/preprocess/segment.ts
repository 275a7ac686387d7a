/**
 * Segmentation of a handwritten digit string (a cheque amount, an ATM deposit slip) into candidate digits, each
 * prepared with MNIST's procedure, for a recognition-based reading (LeCun et al. 1998, section VI: heuristic
 * over-segmentation, the recognizer scoring each candidate, the best path through them). The writing marks of the
 * ink map (see marks.ts: specks, edge runs and blobs are left out and counted); marks that overlap horizontally by
 * most of the narrower one merged (a 5's top bar above its body); marks wider than a narrow digit cut where touching
 * digits may meet (along the thinnest ink, around strokes that overlap); the pieces left to right, and the
 * candidates: each mark whole or in parts, and small pieces with their neighbours. No candidate is a blob; a piece that is (a bar cut into squares) may be left out.
 */
import { extractInk, workingSize, type PixelImage } from './ink.js';
import type { GrayImage } from './gray-image.js';
import { findWriting, isBlob, strokeFraction, unionBox, type Box, type Mark } from './marks.js';
import { fitDigit, inkOfMarks } from './procedures.js';

/** A candidate digit: pieces `from` to `to - 1` of the writing, left to right, together. */
interface DigitCandidate {
  from: number;
  to: number;
  /**
   * What its shape costs a reading before the recognizer speaks (a log-probability, >= 0): a cut through ink where it
   * starts, its width beyond a usual digit's, a small piece read alone.
   */
  cost: number;
  /** Where it is, in the working image's pixels (the picture scaled to a long side of at most 512). */
  box: Box;
  /** [28 * 28] in [0, 1], ink bright: the pieces prepared by MNIST's procedure. */
  input: Float32Array;
}

/**
 * A digit string's candidate readings: the writing cut into `pieces` (whole marks, and marks cut where digits may
 * touch), and the candidate digits, each one to MAX_PIECES neighbouring pieces. A reading is a path of candidates
 * from piece 0 to `pieces`; the recognizer scores each candidate and `bestPath` picks the path (recognition-based
 * segmentation, LeCun et al. 1998, section VI: heuristic over-segmentation then the best path through the graph).
 */
export interface DigitReading {
  pieces: number;
  candidates: DigitCandidate[];
  /** The first piece of each row of writing, top to bottom (a reading's text breaks its lines there). */
  rows: number[];
  /** The working picture's size, in pixels, which the boxes are in (the picture scaled to at most 512 px). */
  width: number;
  height: number;
  /**
   * What leaving each piece out costs a reading: nothing for a blob (a 7's bar cut from its stem is read with it, or
   * not at all), SKIP_COST for a small piece (a flag, a comma, a dash), which may also be part of its neighbour;
   * Infinity for any other (writing is not left out).
   */
  skipCost: number[];
  /** Marks that are not digits: specks, blobs, runs along the edge. */
  ignored: number;
}

/** The most pieces one digit is made of (a 4 of two strokes, a 5 with its flag, a 1 and its serif). */
const MAX_PIECES = 3;

/**
 * Rows of writing are further apart than this fraction of the tallest mark (a 5's flag is nearer its body, and a
 * second row may be written a seventh of a digit's height below the first).
 */
const ROW_GAP = 0.1;

/**
 * The costs a reading pays for its shape (log-probabilities, as the recognizer's scores are), chosen on strings of
 * MNIST test digits written side by side (`npm run bench:digit-strings`; BENCHMARKS.md): with them most cuts between
 * touching digits are taken and cuts through one digit are not.
 *
 * A piece shorter and narrower than SMALL_PIECE of the writing's height is small: part of a digit (a 5's flag) or
 * punctuation (a comma, a dash, a point, a dashed guide line). Left out it costs SKIP_COST (so a 5's flag a little apart still joins its
 * body: read together 0.88 a 5, where the body alone reads 0.999 a 6); read as a digit of its own, or small pieces
 * read as one digit together (two dashes of a guide line), SMALL_ALONE_COST more (punctuation reads as a confident 1,
 * 2 or 7).
 */
const SMALL_PIECE = 0.45;
const FLAT_PIECE = 0.25;
const SKIP_COST = 0.5;
const SMALL_ALONE_COST = 3;
/** A cut through ink costs CUT_COST times the strokes it crosses (at least one) squared: digits touch at a point. */
const CUT_COST = 0.5;
/**
 * A digit wider than WIDE times a usual digit (USUAL_WIDTH of the writing's height) costs WIDE_COST per usual width
 * beyond: two touching digits are wide.
 */
const WIDE = 1.4;
const WIDE_COST = 4;
const USUAL_WIDTH = 0.7;
/**
 * A cut may wander this fraction of the writing's height either side of its column, at PATH_STEP a step aside
 * (both chosen as the costs above; a step of 0.3 parts as many overlapping digits as 0.05 and cuts fewer wide digits
 * in two).
 */
const PATH_RADIUS = 0.25;
const PATH_STEP = 0.3;

/** Two marks as one. */
function merge(a: Mark, b: Mark): Mark {
  const pixels = new Int32Array(a.pixels.length + b.pixels.length);
  pixels.set(a.pixels);
  pixels.set(b.pixels, a.pixels.length);
  const x0 = Math.min(a.box.x, b.box.x);
  const y0 = Math.min(a.box.y, b.box.y);
  const x1 = Math.max(a.box.x + a.box.width, b.box.x + b.box.width);
  const y1 = Math.max(a.box.y + a.box.height, b.box.y + b.box.height);
  return { box: { x: x0, y: y0, width: x1 - x0, height: y1 - y0 }, pixels, edgePixels: a.edgePixels + b.edgePixels };
}

/**
 * `mark` cut along the paths `cuts` (left to right, not crossing): the pieces that hold ink, left to right. A pixel
 * on a cut's path goes to the piece on its right.
 */
function cutAt(mark: Mark, cuts: Cut[], imageWidth: number): { piece: Mark; crossing: number }[] {
  const y0 = mark.box.y;
  const pieces: { piece: Mark; crossing: number }[] = [];
  const parts: number[][] = Array.from({ length: cuts.length + 1 }, () => []);
  for (const p of mark.pixels) {
    const x = p % imageWidth;
    const y = (p - x) / imageWidth - y0;
    let part = 0;
    while (part < cuts.length && x >= cuts[part]!.path[y]!) part++;
    parts[part]!.push(p);
  }
  for (const [i, list] of parts.entries()) {
    if (list.length === 0) continue;
    const pixels = Int32Array.from(list);
    let py0 = Infinity;
    let py1 = -Infinity;
    let px0 = Infinity;
    let px1 = -Infinity;
    for (const p of pixels) {
      const x = p % imageWidth;
      const y = (p - x) / imageWidth;
      py0 = Math.min(py0, y);
      py1 = Math.max(py1, y);
      px0 = Math.min(px0, x);
      px1 = Math.max(px1, x);
    }
    const box = { x: px0, y: py0, width: px1 - px0 + 1, height: py1 - py0 + 1 };
    pieces.push({ piece: { box, pixels, edgePixels: 0 }, crossing: i === 0 ? 0 : cuts[i - 1]!.crossing });
  }
  return pieces;
}

/** Where a mark may be cut: for each row of its box, the cut's image x; and the strokes it crosses (ink over stroke). */
interface Cut {
  path: Int32Array;
  crossing: number;
}

/**
 * Where touching digits may be cut in a mark wider than a narrow digit, left to right: from the columns of least
 * ink, one near each ideal cut of a split into 2 to `most` equal parts (digits touch where a stroke of one meets the
 * next, so the cut is where the ink is thinnest), and every column whose ink is a single short run (a touching
 * point) at least a quarter of the writing's height from either side, at least `minGap` apart, the cheapest path
 * down through the mark within PATH_RADIUS of the writing's height of the column (cutPath).
 */
function cutCandidates(mark: Mark, imageWidth: number, height: number): Cut[] {
  const { x: x0, y: y0, width: w, height: h } = mark.box;
  const columnInk = new Float64Array(w);
  const rows = Array.from({ length: w }, () => new Uint8Array(h));
  for (const p of mark.pixels) {
    const x = (p % imageWidth) - x0;
    columnInk[x]! += 1;
    rows[x]![Math.floor(p / imageWidth) - y0] = 1;
  }
  const minGap = Math.max(2, Math.round(height * 0.25));
  const found = new Set<number>();
  const most = Math.max(2, Math.round(w / (height * 0.4)));
  for (let parts = 2; parts <= most; parts++) {
    for (let k = 1; k < parts; k++) {
      const ideal = Math.round((k * w) / parts);
      const radius = Math.max(1, Math.round(w / parts / 3));
      let best = -1;
      for (let c = Math.max(minGap, ideal - radius); c <= Math.min(w - minGap, ideal + radius); c++)
        if (best < 0 || columnInk[c]! < columnInk[best]!) best = c;
      if (best > 0) found.add(best);
    }
  }
  // A touching point: the column crosses the ink once, in a run no longer than a fifth of the writing's height.
  const runOf = (c: number) => {
    let runs = 0;
    for (let y = 0; y < h; y++) if (rows[c]![y] && (y === 0 || !rows[c]![y - 1])) runs++;
    return runs;
  };
  for (let c = minGap; c <= w - minGap; c++)
    if (
      runOf(c) === 1 &&
      columnInk[c]! <= height * 0.2 &&
      columnInk[c]! <= columnInk[c - 1]! &&
      columnInk[c]! <= columnInk[c + 1]!
    )
      found.add(c);
  const cuts: number[] = [];
  for (const c of [...found].sort((a, b) => a - b)) {
    if (cuts.length === 0 || c - cuts.at(-1)! >= minGap) cuts.push(c);
    else if (columnInk[c]! < columnInk[cuts.at(-1)!]!) cuts[cuts.length - 1] = c;
  }
  const stroke = Math.max(1, strokeFraction([mark], imageWidth) * Math.max(w, h));
  const radius = Math.max(1, Math.round(height * PATH_RADIUS));
  const paths: Cut[] = [];
  for (const c of cuts) {
    const { path, ink } = cutPath(rows, c, Math.max(1, c - radius), Math.min(w - 1, c + radius));
    // Cuts do not cross: each keeps to the right of the one before.
    const before = paths.at(-1)?.path;
    for (let y = 0; y < h; y++) path[y] = x0 + Math.max(path[y]!, before === undefined ? 0 : before[y]! - x0);
    paths.push({ path, crossing: ink / stroke });
  }
  return paths;
}

/**
 * The cheapest way down through a mark from top to bottom within columns lo..hi (a drop-fall cut, generalised as a
 * shortest path: Congedo, Dimauro, Impedovo and Pirlo 1995; Wang and Jean 1994): each row the path moves at most
 * one column, and pays 1 for each ink pixel it runs through, 1 for each diagonal stroke it slips between, and
 * PATH_STEP for each sideways step. Two digits that overlap (a 1 leaning into the 0 after it, a 7's bar over the
 * next digit) part along the gap between them, where no column does.
 * @param ink per column of the mark's box, its ink per row (1 or 0)
 * @returns for each row of the box, the path's column (box x), and the ink it crosses (pixels)
 */
function cutPath(ink: Uint8Array[], c: number, lo: number, hi: number): { path: Int32Array; ink: number } {
  const h = ink[0]!.length;
  const span = hi - lo + 1;
  let cost = new Float64Array(span);
  let next = new Float64Array(span);
  const from = new Int8Array(h * span);
  for (let i = 0; i < span; i++) cost[i] = ink[lo + i]![0]! + Math.abs(lo + i - c) * PATH_STEP;
  for (let y = 1; y < h; y++) {
    for (let i = 0; i < span; i++) {
      const x = lo + i;
      let best = Infinity;
      let move = 0;
      for (let dx = -1; dx <= 1; dx++) {
        const j = i - dx;
        if (j < 0 || j >= span) continue;
        // Moving sideways between two ink pixels that touch at a corner crosses a thin diagonal stroke.
        const slip = dx !== 0 && ink[x]![y - 1]! && ink[x - dx]![y]! ? 1 : 0;
        const total = cost[j]! + (dx === 0 ? 0 : PATH_STEP + slip);
        if (total < best) [best, move] = [total, dx];
      }
      next[i] = best + ink[x]![y]!;
      from[y * span + i] = move;
    }
    [cost, next] = [next, cost];
  }
  let end = 0;
  for (let i = 1; i < span; i++) if (cost[i]! < cost[end]!) end = i;
  const path = new Int32Array(h);
  let crossed = 0;
  for (let y = h - 1, i = end; y >= 0; y--) {
    path[y] = lo + i;
    crossed += ink[lo + i]![y]!;
    if (y > 0) {
      const dx = from[y * span + i]!;
      if (dx !== 0 && ink[lo + i]![y - 1]! && ink[lo + i - dx]![y]!) crossed++;
      i -= dx;
    }
  }
  return { path, ink: crossed };
}

/**
 * The candidate digits written in a picture, for a reading of its digit string (see DigitReading); none for a
 * blank picture.
 * @throws RangeError when the pixel buffer does not match its size
 */
export function segmentDigits(image: PixelImage): DigitReading {
  const ink = extractInk(image, 'local');
  const empty = { pieces: 0, candidates: [], skipCost: [], rows: [], ...workingSize(image.width, image.height) };
  if (ink === undefined) return { ...empty, ignored: 0 };
  const { marks, kinds, rules } = findWriting(ink);
  const writing = marks.filter((_, i) => kinds[i] === 'writing');
  const ignored = marks.length - writing.length + rules;
  if (writing.length === 0) return { ...empty, ignored };
  const reading: DigitReading = { ...empty, ignored };
  for (const row of rowsOf(writing)) {
    if (row.every(({ box }) => box.width > 2 * box.height)) {
      // A row of flat marks only (a dashed guide line under the writing, a row of dashes) holds no digit.
      reading.ignored += row.length;
      continue;
    }
    reading.rows.push(reading.pieces);
    readRow(row, ink, reading);
  }
  return reading;
}

/**
 * The writing's rows, top to bottom, each left to right: marks at least SMALL_PIECE of the tallest one's height
 * start a row, or join one they overlap or come within ROW_GAP of the tallest mark's height of; smaller marks (a
 * comma below the line) join the row nearest to them within that distance, or start one of their own.
 */
function rowsOf(writing: Mark[]): Mark[][] {
  const tallest = Math.max(...writing.map((mark) => mark.box.height));
  const rows: { top: number; bottom: number; marks: Mark[] }[] = [];
  const large = writing.filter((mark) => mark.box.height >= tallest * SMALL_PIECE).sort((a, b) => a.box.y - b.box.y);
  for (const mark of large) {
    const { y, height } = mark.box;
    // Rows of writing are apart by more than a quarter of its height; a 5's flag or a 7's bar is nearer its body.
    const row = rows.find((r) => Math.min(r.bottom, y + height) - Math.max(r.top, y) > -tallest * ROW_GAP);
    if (row) {
      row.marks.push(mark);
      row.top = Math.min(row.top, y);
      row.bottom = Math.max(row.bottom, y + height);
    } else {
      rows.push({ top: y, bottom: y + height, marks: [mark] });
    }
  }
  const small = writing.filter((mark) => mark.box.height < tallest * SMALL_PIECE).sort((a, b) => a.box.y - b.box.y);
  for (const mark of small) {
    const { y, height } = mark.box;
    const distance = (r: { top: number; bottom: number }) => Math.max(0, r.top - (y + height), y - r.bottom);
    const nearest = rows.reduce<(typeof rows)[number] | undefined>(
      (a, b) => (a === undefined || distance(b) < distance(a) ? b : a),
      undefined,
    );
    // Small writing away from every row (a smaller line below a larger one) is a row of its own.
    if (nearest !== undefined && distance(nearest) <= tallest * ROW_GAP) {
      nearest.marks.push(mark);
      nearest.top = Math.min(nearest.top, y);
      nearest.bottom = Math.max(nearest.bottom, y + height);
    } else {
      rows.push({ top: y, bottom: y + height, marks: [mark] });
    }
  }
  return rows.sort((a, b) => a.top - b.top).map((row) => row.marks.sort((a, b) => a.box.x - b.box.x));
}

/**
 * Whether a piece is small beside writing `height` tall: short and narrow (under SMALL_PIECE of it), or flat (a dash,
 * a long flag, a piece of a dashed guide line: lower than FLAT_PIECE of it and no wider than it is tall).
 */
const isSmall = (box: Box, height: number) =>
  Math.max(box.height, box.width) < height * SMALL_PIECE || (box.height < height * FLAT_PIECE && box.width < height);

/** Adds one row's pieces and candidate digits (indices after those already in `reading`) to `reading`. */
function readRow(writing: Mark[], ink: GrayImage, reading: DigitReading): void {
  const first = reading.pieces;
  // Pieces of one digit overlap horizontally by most of the narrower one.
  const merged: Mark[] = [];
  for (const mark of writing) {
    const last = merged.at(-1);
    if (last) {
      const overlap =
        Math.min(last.box.x + last.box.width, mark.box.x + mark.box.width) - Math.max(last.box.x, mark.box.x);
      if (overlap >= Math.min(last.box.width, mark.box.width) * 0.6) {
        merged[merged.length - 1] = merge(last, mark);
        continue;
      }
    }
    merged.push(mark);
  }
  let height = 0;
  for (const mark of merged) height = Math.max(height, mark.box.height);
  // Touching digits: a mark wider than a narrow digit may hold several; it is cut where they may touch, and the
  // reading decides which cuts are between digits.
  const pieces: Mark[] = [];
  const cutBefore: boolean[] = [];
  const crossing: number[] = [];
  const markOf: number[] = [];
  for (const [m, mark] of merged.entries()) {
    // A small mark (a dash) is never cut: its halves would be pieces of writing.
    const parts =
      mark.box.width > height * 0.5 && !isSmall(mark.box, height)
        ? cutAt(mark, cutCandidates(mark, ink.width, height), ink.width)
        : [{ piece: mark, crossing: 0 }];
    parts.forEach(({ piece: part, crossing: crossed }, i) => {
      pieces.push(part);
      cutBefore.push(i > 0);
      crossing.push(crossed);
      markOf.push(m);
    });
  }
  // A digit's usual width: MNIST's digits are about 0.7 of their height wide (a 1 less, a 0 or a 2 more).
  const usual = USUAL_WIDTH * height;
  const small = pieces.map(({ box }) => isSmall(box, height));
  // A blob (a 7's bar cut from its stem, a bar cut into squares) is no digit alone, nor with others; a piece that is
  // one may be left out at no cost.
  const blob = (group: Mark[]) => isBlob(group, ink.width);
  const blobPiece = pieces.map((piece) => blob([piece]));
  for (let from = 0; from < pieces.length; from++) {
    for (let to = from + 1; to <= pieces.length; to++) {
      const group = pieces.slice(from, to);
      // Pieces of one mark may always be one digit (the mark whole, or a part of it); pieces of several marks when
      // they may be parts of one digit.
      const oneMark = markOf[from] === markOf[to - 1];
      if (!oneMark && (to - from > MAX_PIECES || !oneDigit(group, from, cutBefore, small, height))) break;
      if (unionBox(group).width > height * 2) break;
      // A whole mark is no blob (findWriting sorted those out), nor are pieces of several marks together (each is
      // writing); a part cut from a mark may be one.
      const whole = oneMark && (from === 0 || markOf[from - 1] !== markOf[from]) && markOf[to] !== markOf[to - 1];
      if (oneMark && !whole && blob(group)) continue;
      const box = unionBox(group);
      const cost =
        (cutBefore[from] ? CUT_COST * Math.max(1, crossing[from]!) ** 2 : 0) +
        (isSmall(box, height) ? SMALL_ALONE_COST : 0) +
        Math.max(0, box.width / usual - WIDE) * WIDE_COST;
      reading.candidates.push({
        from: first + from,
        to: first + to,
        cost,
        box,
        input: fitDigit(inkOfMarks(ink, group)),
      });
    }
  }
  small.forEach((isSmall, i) =>
    reading.skipCost.push(blobPiece[i] ? 0 : isSmall && !cutBefore[i] ? SKIP_COST : Infinity),
  );
  reading.pieces += pieces.length;
}

/**
 * Whether pieces from..from+group.length-1 may be one digit: together no wider than the writing is tall, each
 * next to the one before (a gap under a sixth of the writing's height), and each joint a cut through one mark or a
 * small piece meeting its neighbour (two whole marks of the writing's height are two digits).
 */
function oneDigit(group: Mark[], from: number, cutBefore: boolean[], small: boolean[], height: number): boolean {
  const box = unionBox(group);
  if (box.width > height * 1.1) return false;
  for (let i = 1; i < group.length; i++) {
    const at = from + i;
    if (!cutBefore[at] && !small[at] && !small[at - 1]) return false;
    const before = unionBox(group.slice(0, i));
    if (group[i]!.box.x - (before.x + before.width) > height / 6) return false;
  }
  return true;
}
