// The web page (src/web) built as static files into dist/web; `cnnx serve` serves them at /.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('src/web', import.meta.url)),
  base: '/',
  logLevel: 'warn',
  build: { outDir: fileURLToPath(new URL('dist/web', import.meta.url)), emptyOutDir: true, target: 'es2022' },
});
