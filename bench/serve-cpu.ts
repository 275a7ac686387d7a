/**
 * `npx tsx bench/serve-cpu.ts`: where the CPU goes under load. Starts `cnnx serve` on its own port, drives the echo
 * and infer routes in turn with autocannon (32 connections, single-image KServe JSON), and prints for each the
 * server's CPU per request by thread (from /proc/<pid>/task/<tid>/stat), how busy each thread was (% of one core),
 * and autocannon's own CPU per request. Linux only. BENCH_ROUTES (default echo,infer,echo,infer), BENCH_SECONDS (4),
 * BENCH_SERVER_ARGS.
 */
import { readdirSync, readFileSync } from 'node:fs';
import autocannon from 'autocannon';
import { loadDataset } from '../src/data/index.js';
import { startServe, wordsOf } from './serve-process.js';

const PORT = Number(process.env.BENCH_PORT ?? 8799);
const NAME = 'lenet5-relu-mnist';
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const ROUTES = (process.env.BENCH_ROUTES ?? 'echo,infer,echo,infer').split(',');
const TICKS_PER_SECOND = 100; // USER_HZ

const mnist = await loadDataset('mnist');
const data = Array.from(mnist.test.pixels.subarray(0, 784), (v) => Math.round((v / 255) * 1e4) / 1e4);
const body = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data }] });

const server = await startServe(
  ['--model', `models/${NAME}.onnx`, '--port', String(PORT), '--ep', 'cpu', '--echo', '--no-watch'].concat(
    wordsOf(process.env.BENCH_SERVER_ARGS),
  ),
);

/** CPU ticks so far of each of the server's threads, by "name:tid". */
function threadTicks(pid: number): Map<string, number> {
  const ticks = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks.set(`${name}:${tid}`, Number(fields[11]) + Number(fields[12]));
  }
  return ticks;
}

try {
  for (const route of ROUTES) {
    const path = route === 'echo' ? `/debug/echo/${NAME}` : `/v2/models/${NAME}/infer`;
    const before = threadTicks(server.child.pid!);
    const cpu = process.cpuUsage();
    const result = await autocannon({
      url: `http://127.0.0.1:${PORT}${path}`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      connections: 32,
      duration: SECONDS,
    });
    const after = threadTicks(server.child.pid!);
    const used = process.cpuUsage(cpu);
    const n = result.requests.total;
    const threads = [...after]
      .map(([thread, t]) => [thread, t - (before.get(thread) ?? 0)] as const)
      .filter(([, t]) => (t * 1e6) / TICKS_PER_SECOND / n >= 1)
      .map(([thread, t]) => {
        const usPerRequest = (t * 1e6) / TICKS_PER_SECOND / n;
        const busy = (100 * t) / TICKS_PER_SECOND / SECONDS;
        return `${thread} ${usPerRequest.toFixed(0)} us (${busy.toFixed(0)}%)`;
      });
    console.log(
      `${route.padEnd(5)} ${Math.round(result.requests.average)} req/s, p99 ${result.latency.p99} ms | server CPU per ` +
        `request: ${threads.join(', ')} | autocannon ${((used.user + used.system) / n).toFixed(0)} us`,
    );
  }
} finally {
  await server.stop();
}
