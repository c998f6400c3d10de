#!/usr/bin/env node
import { run } from './run.ts';

const interrupt = new AbortController();
// Only a bulk run has work worth finishing; every other command stops at once on Ctrl-C as usual.
if (process.argv.includes('--process-all-failed')) {
  process.on('SIGINT', () => {
    if (interrupt.signal.aborted) process.exit(130);
    interrupt.abort();
    process.stderr.write('\nstopping after the purchases in flight; press Ctrl-C again to quit now\n');
  });
}

process.exitCode = await run({
  argv: process.argv.slice(2),
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
  interrupt: interrupt.signal,
});
