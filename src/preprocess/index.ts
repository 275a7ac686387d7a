/**
 * Preprocessing stage, isomorphic: the same code prepares images in the server (classify, read-digits, predict)
 * and in the web page. It imports nothing from Node or the DOM.
 */
export { resample } from './gray-image.js';
export { IMAGE_FORMATS, imageFormatOf, MAX_IMAGE_PIXELS } from './image-format.js';
export { toGray, WORKING_SIDE, type PixelImage } from './ink.js';
export { inkBox, prepareInput, PROCEDURES, procedureFor, type Prepared, type Procedure } from './procedures.js';
export { pictureToPixels, pixelsToInput } from './picture-input.js';
export { segmentDigits, type DigitReading } from './segment.js';
