/**
 * Which modules the runtime's entry points and the web page load, read from their import statements: the Node
 * entry never loads onnxruntime-web, the browser entry and the page nothing from Node, and the runtime stage
 * nothing from the export stage (export writes models with the runtime's model-file module, not the reverse).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const IMPORT =
  /(?:^|\n)\s*(?:import|export)\s(type\s)?[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

/**
 * The specifiers a TypeScript file imports: static imports, re-exports and literal dynamic imports, with
 * `import type` / `export type` (erased when compiled) only when `types` is set.
 */
function importsOf(file: string, types = true): string[] {
  return [...readFileSync(file, 'utf8').matchAll(IMPORT)]
    .filter((match) => types || match[1] === undefined)
    .map((match) => match[2] ?? match[3]!);
}

/** Every package or built-in `entry` (a repository path) loads when it runs, and every source file on the way. */
function reach(entry: string): { files: string[]; packages: string[] } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    for (const specifier of importsOf(file, false)) {
      if (specifier.startsWith('.')) visit(resolve(dirname(file), specifier).replace(/\.js$/, '.ts'));
      else packages.add(specifier);
    }
  };
  visit(resolve(entry));
  return { files: [...files].map((file) => relative(process.cwd(), file)), packages: [...packages] };
}

const sourcesUnder = (dir: string): string[] =>
  readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts'))
    .map((file) => join(dir, file));

describe('module boundaries', () => {
  it('the runtime stage imports nothing from the export stage', () => {
    const offending = sourcesUnder('src/runtime').filter((file) =>
      importsOf(file).some((specifier) => /(^|\/)export\//.test(specifier)),
    );
    expect(offending).toEqual([]);
  });

  it('the Node entry of the runtime does not load onnxruntime-web', () => {
    const { packages } = reach('src/runtime/index.ts');
    expect(packages).toContain('onnxruntime-node');
    expect(packages).not.toContain('onnxruntime-web');
  });

  it.each(['src/runtime/web/index.ts', 'src/web/main.ts'])('%s loads nothing from Node', (entry) => {
    const { packages, files } = reach(entry);
    const fromNode = packages.filter((name) => name.startsWith('node:') || name === 'onnxruntime-node');
    expect(fromNode, `reached through ${files.join(', ')}`).toEqual([]);
  });

  it('the page reaches onnxruntime-web only through the runtime adapter', () => {
    const direct = sourcesUnder('src/web').filter((file) =>
      importsOf(file).some((specifier) => specifier.startsWith('onnxruntime-')),
    );
    expect(direct).toEqual([]);
    expect(reach('src/web/main.ts').files).toContain('src/runtime/web/web-session.ts');
  });

  it('the cnnx.* metadata keys are spelled in one module', () => {
    const spelled = [...sourcesUnder('src/runtime'), ...sourcesUnder('src/export'), ...sourcesUnder('src/web')]
      .filter((file) => /['"`]cnnx\.[a-z_]+['"`]/.test(readFileSync(file, 'utf8')))
      .sort();
    expect(spelled).toEqual(['src/runtime/model-file.ts']);
  });
});
