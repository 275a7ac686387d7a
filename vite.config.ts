// The web page (src/web) built as static files into dist/web; `cnnx serve` serves them at /.
import { defineConfig } from 'vite';

export default defineConfig({
  root: 'src/web',
  base: '/',
  logLevel: 'warn',
  build: { outDir: '../../dist/web', emptyOutDir: true, target: 'es2022' },
});
