import { userInfo } from 'node:os';

/**
 * The OS account running the CLI names the operator in a purchase's history (write-off, retries,
 * reconciliation fixes); none when it cannot be read.
 */
export function osUser(): string | null {
  try {
    return userInfo().username.slice(0, 64) || null;
  } catch {
    return null;
  }
}
