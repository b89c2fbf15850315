// What every part of a bench run shares: where generated files go, the log, the options.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

export interface BenchOptions {
  /** Short runs to check the harness; results go to bench/.work/, never bench/RESULTS.md. */
  quick: boolean;
  /** Sections to run (empty = all). */
  only: string[];
  /** Seconds of measured load per keep-alive run. */
  durationS: number;
  /** paired section: rounds, and seconds per contender per round. */
  rounds: number;
  turnS: number;
  /** Seconds of measured load per new-connection run. */
  handshakeDurationS: number;
  /** Keep-alive connections the load generator opens. */
  connections: number;
  /** Concurrent connections in the new-connection runs. */
  handshakeConnections: number;
  /** Contender ids to run (empty = all). */
  contenders: string[];
  algs: ('ec' | 'rsa')[];
  /** Keys in the dynamic-mTLS bundle. */
  dynamicKeys: number;
  /** APIs and keys of the compile benchmark. */
  compileApis: number;
  compileKeys: number;
  /** Entries of the CRL the compile bench adds (revocation document). */
  compileCrl: number;
  /** Key counts of the scale section (1,000 APIs each). */
  scaleKeys: number[];
}

export interface BenchContext {
  /** The repository root. */
  root: string;
  opts: BenchOptions;
  log(line: string): void;
  /** bench/.work/<parts> (git-ignored), created on demand. */
  dir(...parts: string[]): string;
  /** Argv prefix that runs a TypeScript file with plain node (through tsx). */
  tsNode: string[];
}

export function createContext(root: string, opts: BenchOptions, log: (line: string) => void): BenchContext {
  return {
    root,
    opts,
    log,
    dir(...parts) {
      const dir = join(root, 'bench', '.work', ...parts);
      mkdirSync(dir, { recursive: true });
      return dir;
    },
    tsNode: ['--import', 'tsx'],
  };
}

/**
 * The context of a standalone workload script (bench/workers*.ts): run.ts's sections are not
 * run, so only the load's shape (seconds, rounds, connections) matters; the log is stdout.
 */
export function standaloneContext(root: string, load: { seconds: number; rounds: number; connections: number }): BenchContext {
  const { seconds, rounds, connections } = load;
  return createContext(
    root,
    {
      quick: false,
      only: [],
      durationS: seconds,
      rounds,
      turnS: seconds,
      handshakeDurationS: seconds,
      connections,
      handshakeConnections: 16,
      contenders: [],
      algs: ['ec'],
      dynamicKeys: 0,
      compileApis: 0,
      compileKeys: 0,
      compileCrl: 0,
      scaleKeys: [],
    },
    (line) => console.log(line),
  );
}
