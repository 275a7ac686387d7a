/**
 * Files that ship with the cnnx package, found from the package itself and never from the current directory, so
 * `cnnx` works the same from any folder. This module sits at `src/common/` in the sources and at `dist/common/`
 * once compiled: the package root is two folders up in both.
 */
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** The package's root folder (holds package.json). */
const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Where `npm run build` puts the web page (`vite build` of src/web). */
export const PAGE_DIR = join(PACKAGE_ROOT, 'dist', 'web');

/** The committed, trained models that `cnnx demo` serves (models/README.md gives their provenance). */
export const COMMITTED_MODELS = Object.freeze({
  digits: join(PACKAGE_ROOT, 'models', 'lenet5-relu-mnist.onnx'),
  fashion: join(PACKAGE_ROOT, 'models', 'lenet5-relu-fashion-mnist.onnx'),
});
