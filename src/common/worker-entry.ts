/**
 * Where a worker thread's module is: beside the module that starts it, compiled JavaScript in the package, or
 * TypeScript when cnnx runs from its sources (tests, tsx), where the thread first loads tsx (a devDependency)
 * through tsx-worker-loader.mjs.
 */

/**
 * The thread module `name` (a path without extension, relative to `from`) and the `execArgv` its thread needs.
 * @param from the starting module's `import.meta.url`
 */
export function workerEntry(name: string, from: string): { script: URL; execArgv?: string[] } {
  if (!from.endsWith('.ts')) return { script: new URL(`${name}.js`, from) };
  return {
    script: new URL(`${name}.ts`, from),
    execArgv: [...process.execArgv, '--import', new URL('./tsx-worker-loader.mjs', import.meta.url).href],
  };
}
