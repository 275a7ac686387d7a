/**
 * Preprocessing stage, isomorphic: the same code prepares images in the server (classify, read-digits, predict)
 * and in the web page. It imports nothing from Node or the DOM.
 */
export { borderMedian, crop, inkBright, resample, toGray, type GrayImage } from './gray-image.js';
export {
  fitFromInk,
  inkBox,
  mnistFromInk,
  preprocess,
  procedureFor,
  PROCEDURES,
  type Box,
  type Procedure,
} from './procedures.js';
export { segmentDigits, type DigitSegment } from './segment.js';
