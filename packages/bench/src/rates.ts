/** Purchases/s of the http gateway's end-to-end run (its latency target is set at this rate). */
export const HTTP_END_TO_END_RATE = 50;
