// Where the CLI's own messages go, and how many: -q keeps only errors, -v adds detail. Results
// (bundles on -o -, JSON, fingerprints) go to stdout; everything said about them goes to stderr.
let level = 0;

/** -1 quiet (-q), 0 normal, 1 verbose (-v). Set once by main before the command runs. */
export function setVerbosity(v: -1 | 0 | 1): void {
  level = v;
}

export function verbosity(): -1 | 0 | 1 {
  return level as -1 | 0 | 1;
}

/** A progress or summary line (suppressed by -q). */
export function info(line: string): void {
  if (level >= 0) process.stderr.write(`${line}\n`);
}

/** A detail line (shown with -v). */
export function detail(line: string): void {
  if (level >= 1) process.stderr.write(`${line}\n`);
}

/** A warning (suppressed only by -q). */
export function warn(line: string): void {
  if (level >= 0) process.stderr.write(`${line}\n`);
}

/** "1 API", "2 APIs", "1 key", "0 keys" (common/count.ts: the one helper). */
export { count } from '../common/count.ts';
