/**
 * Bounds the transfers one process has on the wire (TREASURY_MAX_IN_FLIGHT). A transfer holds a
 * slot only while its request is open, never a database connection, so a slow treasury costs
 * latency rather than throughput: with 256 slots and a 1 s treasury a worker still pays ~128
 * purchases a second on a handful of connections.
 */
export class TransferSlots {
  readonly capacity: number;
  #inFlight = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
  }

  /** Transfers on the wire now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Transfers waiting for a slot. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Runs `transfer` once a slot is free, first come first served. */
  async run<T>(transfer: () => Promise<T>): Promise<T> {
    if (this.#inFlight >= this.capacity) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#inFlight++;
    try {
      return await transfer();
    } finally {
      const next = this.#waiting.shift();
      // The freed slot passes straight to the next waiter, so the count never dips and refills.
      if (next) next();
      else this.#inFlight--;
    }
  }
}
