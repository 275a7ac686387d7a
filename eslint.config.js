// ESLint: typescript-eslint's type-aware recommended rules, the two this project insists on, and the architecture
// as rules: which stage may import which, each stage only through its index.ts, foreign runtimes behind one
// adapter each, no import cycles. README.md ("Architecture") explains the stages; this file is what enforces them.
import js from '@eslint/js';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

/**
 * The stages under src/ and the stages each may import. The flow goes one way: data and pictures in, models,
 * training, export, runtimes, then the server, the page and the command line on top.
 */
const STAGES = {
  common: [],
  data: ['common', 'preprocess'],
  preprocess: [],
  models: ['common', 'data'],
  train: ['common', 'data', 'models'],
  runtime: ['common', 'data', 'preprocess'],
  export: ['common', 'data', 'models', 'runtime', 'train'],
  serve: ['common', 'data', 'preprocess', 'runtime'],
  web: ['preprocess', 'runtime'],
  cli: ['common', 'data', 'preprocess', 'models', 'train', 'runtime', 'export', 'serve'],
};

/**
 * Entry points other stages may import: each stage's index.ts; the runtime's browser adapter; and common's errors
 * alone, which code that also runs in browsers imports without the Node-only rest of common.
 */
const ENTRY_POINTS = { runtime: ['./index.ts', './web/index.ts'], common: ['./index.ts', './errors.ts'] };

const stageZones = Object.entries(STAGES).flatMap(([stage, allowed]) =>
  Object.keys(STAGES)
    .filter((other) => other !== stage)
    .map((other) =>
      allowed.includes(other)
        ? {
            target: `./src/${stage}`,
            from: `./src/${other}`,
            except: ENTRY_POINTS[other] ?? ['./index.ts'],
            message: `import the ${other} stage through its index.ts.`,
          }
        : {
            target: `./src/${stage}`,
            from: `./src/${other}`,
            message: `the ${stage} stage does not depend on ${other}.`,
          },
    ),
);

const restricted = (...groups) => ['error', { patterns: groups }];
const ONNXRUNTIME = { group: ['onnxruntime-*'], message: 'only src/runtime imports ONNX Runtime.' };
const NATIVE_IMAGES = { group: ['sharp'], message: 'decode images in src/data (Node) or with the browser canvas.' };
const TFJS_BACKENDS = {
  group: ['@tensorflow/tfjs-backend-*', '@tensorflow/tfjs-node*', 'webgpu'],
  message: 'only src/train/backends imports tfjs backends.',
};

export default tseslint.config(
  {
    ignores: ['node_modules/', 'dist/', 'runs/', '.gpu/', 'coverage/', 'test-artifacts/', 'models/', 'bench/scratch/'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { 'import-x': importX },
    settings: {
      ...importX.flatConfigs.typescript.settings,
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })],
    },
    rules: {
      'import-x/no-cycle': 'error',
      'import-x/no-restricted-paths': ['error', { zones: stageZones }],
      'no-restricted-imports': restricted(ONNXRUNTIME, TFJS_BACKENDS),
    },
  },
  { files: ['src/runtime/**/*.ts'], rules: { 'no-restricted-imports': restricted(TFJS_BACKENDS) } },
  { files: ['src/train/backends/**/*.ts'], rules: { 'no-restricted-imports': restricted(ONNXRUNTIME) } },
  // Runs in browsers as well as in Node: nothing from Node, no native image library.
  {
    files: ['src/preprocess/**/*.ts', 'src/web/**/*.ts'],
    rules: {
      'import-x/no-nodejs-modules': 'error',
      'no-restricted-imports': restricted(ONNXRUNTIME, TFJS_BACKENDS, NATIVE_IMAGES),
    },
  },
  {
    files: ['src/runtime/web/**/*.ts'],
    rules: {
      'import-x/no-nodejs-modules': 'error',
      'no-restricted-imports': restricted(TFJS_BACKENDS, NATIVE_IMAGES, {
        group: ['onnxruntime-node'],
        message: 'browsers run onnxruntime-web.',
      }),
    },
  },
  {
    files: ['**/*.js', '**/*.cjs', '**/*.mjs'],
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        URL: 'readonly',
        Buffer: 'readonly',
        performance: 'readonly',
        WebAssembly: 'readonly',
      },
    },
  },
);
