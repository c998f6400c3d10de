/**
 * Preloaded (`node --import`) into the API and the worker when the launcher starts them with an IPC
 * channel. They run in their own process group, so a terminal's Ctrl-C reaches only the launcher,
 * which then stops them in order. Should the launcher vanish without doing so (SIGKILL, crash), the
 * channel closes and the process shuts down as a SIGTERM would make it, instead of lingering.
 */
if (process.channel) {
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
  // The channel must not keep the process alive once its own shutdown has finished.
  process.channel.unref();
}
