/**
 * What `pnpm start` prints once everything answers: one block with every address and credential, so
 * nothing has to be fished out of log lines. A new URL or token is one more row.
 */
export interface BannerRow {
  label: string;
  value: string;
  /** Said after the value, in parentheses. */
  note?: string | undefined;
}

export interface Banner {
  apiUrl: string;
  /** Present when the API serves the operator console. */
  consoleUrl?: string | undefined;
  workerMetricsUrl?: string | undefined;
  /** Bearer tokens, each with where it is kept. */
  tokens: BannerRow[];
  database: BannerRow;
  /** The command that throws the local data away, when there is local data. */
  freshStart?: string | undefined;
}

export function renderBanner(banner: Banner): string {
  const rows: BannerRow[] = [
    { label: 'API', value: banner.apiUrl },
    { label: 'API docs', value: `${banner.apiUrl}/docs` },
    ...(banner.consoleUrl
      ? [{ label: 'Console', value: banner.consoleUrl, note: 'sign in with the admin token' }]
      : []),
    { label: 'API metrics', value: `${banner.apiUrl}/metrics` },
    ...(banner.workerMetricsUrl ? [{ label: 'Worker metrics', value: banner.workerMetricsUrl }] : []),
    ...banner.tokens,
    banner.database,
  ];
  const width = Math.max(...rows.map((row) => row.label.length)) + 2;
  const admin = banner.tokens[0];
  return [
    '',
    'Referral payouts is running.',
    '',
    ...rows.map((row) => `  ${row.label.padEnd(width)}${row.value}${row.note ? `  (${row.note})` : ''}`),
    '',
    'Try it:',
    ...(admin
      ? [
          `  curl -s -H "Authorization: Bearer ${admin.value}" ${banner.apiUrl}/api/marketplace/referral-payouts/summary`,
        ]
      : []),
    '  pnpm demo          # sample data, through the API (same environment as this command)',
    `  DATABASE_URL=${banner.database.value} npm run manage-referral-payouts -- --help`,
    '',
    'Stop: Ctrl-C',
    ...(banner.freshStart ? [`Start fresh: ${banner.freshStart}`] : []),
    '',
  ].join('\n');
}
