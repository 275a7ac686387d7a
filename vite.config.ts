// The web page (src/web) built as static files into dist/web; `cnnx serve` serves them at /.
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

/**
 * Leaves out the WASM binaries that onnxruntime-web's bundle points to beside itself (28 MB): the page sets
 * `wasmPaths` to `/ort/`, where the server hands out the installed package's own files, so they are never fetched.
 */
const noBundledWasm: Plugin = {
  name: 'cnnx-no-bundled-wasm',
  generateBundle(_options, bundle) {
    for (const name of Object.keys(bundle)) if (name.endsWith('.wasm')) delete bundle[name];
  },
};

export default defineConfig({
  root: fileURLToPath(new URL('src/web', import.meta.url)),
  base: '/',
  logLevel: 'warn',
  plugins: [noBundledWasm],
  build: { outDir: fileURLToPath(new URL('dist/web', import.meta.url)), emptyOutDir: true, target: 'es2022' },
});
