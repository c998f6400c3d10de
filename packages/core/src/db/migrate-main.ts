import { loadConfig } from '../config.ts';
import { createDatabase } from './database.ts';
import { migrate } from './migrate.ts';

const config = loadConfig();
const db = createDatabase(config.databaseUrl, { max: 1, applicationName: 'referral-payouts-migrate' });
try {
  const { applied, latest } = await migrate(db);
  console.log(
    applied.length ? `applied ${applied.join(', ')}` : `database is up to date (${latest ?? 'no migrations'})`,
  );
} catch (error) {
  console.error(`migrate: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
} finally {
  await db.destroy();
}
