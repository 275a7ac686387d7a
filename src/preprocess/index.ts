/**
 * Preprocessing stage, isomorphic: the same code prepares images in the server (classify, read-digits, predict)
 * and in the web page. It imports nothing from Node or the DOM.
 */
export { inkBright, resample, toGray, type GrayImage } from './gray-image.js';
export { inkBox, preprocess, procedureFor } from './procedures.js';
export { segmentDigits } from './segment.js';
