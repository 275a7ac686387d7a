// Runs the cnnx CLI from the TypeScript sources in a process of its own (`node --import tsx <this file> ...`), for
// tests that send it signals or kill it.
import { main } from '../../src/cli/index.js';

process.exitCode = await main(process.argv);
