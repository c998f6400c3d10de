/** Exit codes scripts can rely on. */
export const EXIT = {
  ok: 0,
  /** Something is still failed (or could not be done) after the command. */
  stillFailed: 1,
  /** Bad invocation or configuration: nothing was attempted. */
  usage: 2,
  notFound: 3,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];
