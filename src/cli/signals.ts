/**
 * Ctrl-C, SIGTERM and SIGHUP (the terminal closed, an SSH connection dropped) for long commands: the first signal
 * asks the work to stop cleanly (through an AbortSignal whose reason is the signal's name), so a training run writes
 * its checkpoint; a second one quits at once. Exit codes follow the shell's convention, 128 + the signal number: 129
 * for SIGHUP, 130 for SIGINT, 143 for SIGTERM.
 */
import type { Command } from 'commander';

/** The shell's exit code for a process ended by each signal (128 + signal number). */
const SIGNAL_EXIT_CODES = Object.freeze({ SIGHUP: 129, SIGINT: 130, SIGTERM: 143 } as const);

type StopSignal = keyof typeof SIGNAL_EXIT_CODES;

export interface StopSignals {
  /** Aborts on the first SIGHUP, SIGINT or SIGTERM; its reason is the signal's name. */
  signal: AbortSignal;
  /** Stops listening; the default behaviour of the signals returns. */
  dispose(): void;
}

/**
 * Listens for SIGHUP, SIGINT and SIGTERM until `dispose()`. `stopping` is printed on the first signal (what the work does
 * now; undefined: the work says it itself, as training does above its progress bar); a second signal exits the
 * process at once with its code.
 */
export function stopSignals(stopping: string | undefined): StopSignals {
  const controller = new AbortController();
  const onSignal = (name: StopSignal) => {
    if (controller.signal.aborted) process.exit(SIGNAL_EXIT_CODES[name]);
    // After SIGHUP the terminal is gone: a write to it fails (EIO), which must not end the work before it stops.
    if (name === 'SIGHUP') for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
    if (stopping !== undefined) process.stderr.write(`\n${name}: ${stopping} (${name} again quits at once)\n`);
    controller.abort(name);
  };
  const names = Object.keys(SIGNAL_EXIT_CODES) as StopSignal[];
  for (const name of names) process.on(name, onSignal);
  return {
    signal: controller.signal,
    dispose: () => names.forEach((name) => process.off(name, onSignal)),
  };
}

/**
 * Ends `command` as the signal that stopped it would: one line on stderr and exit code 129, 130 or 143 (commander's
 * error() carries the code to the CLI's caller).
 */
export function exitAsStopped(command: Command, signal: string | undefined): never {
  const name: StopSignal = signal === 'SIGTERM' || signal === 'SIGHUP' ? signal : 'SIGINT';
  command.error(`cnnx: stopped by ${name}`, { exitCode: SIGNAL_EXIT_CODES[name], code: 'cnnx.interrupted' });
}
