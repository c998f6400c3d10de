import { fileURLToPath } from 'node:url';

/**
 * The forward-only SQL migrations, `NNNN_name.sql`, applied in file-name order. Found through this
 * package, wherever it is installed, instead of a path climbing out of the code that applies them.
 */
export const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));
