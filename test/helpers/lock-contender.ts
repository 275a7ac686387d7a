// One of several processes contending for a run folder's lock (`node --import tsx <this file> DIR LOG SECONDS`):
// it takes the lock again and again for SECONDS, writes "enter PID" and "exit PID" to LOG around each hold, and
// leaves every other lock behind as a process that ended would (a dead process id in it), so that the others
// also race to take a stale lock over.
import { appendFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { prepareRunDir } from '../../src/train/run-dir.js';

const [dir = '', log = '', seconds = '1'] = process.argv.slice(2);
const until = Date.now() + Number(seconds) * 1000;
for (let held = 0; Date.now() < until;) {
  let release: () => Promise<void>;
  try {
    ({ release } = await prepareRunDir(dir, { resume: true }));
  } catch (error) {
    if ((error as { code?: string }).code !== 'RUN_IN_PROGRESS') throw error;
    await sleep(Math.random() * 3);
    continue;
  }
  appendFileSync(log, `enter ${process.pid}\n`);
  await sleep(5);
  appendFileSync(log, `exit ${process.pid}\n`);
  if (++held % 2 === 0) await release();
  else writeFileSync(`${dir}/run.lock`, '999999999 1\n'); // no process has this id
  await sleep(Math.random() * 3);
}
