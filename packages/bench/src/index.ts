export {
  type BenchOptions,
  DEFAULT_DRAIN_COUNT,
  optionsFromEnv,
  runBench,
  SCENARIOS,
  type ScenarioName,
} from './main.ts';
export type { Report, SummaryRow } from './report.ts';
