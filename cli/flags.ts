// Flag conventions shared by every command: the flags a command takes (read from its usage
// text, so help, did-you-mean and completion need no second list), short parse errors in
// place of node:util's, durations with units, and values that name the environment variable
// they came from.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { closest } from '../compiler/suggest.ts';
import type { HostPort } from '../runtime/supervisor.ts';
import { UsageError, type Command } from './command.ts';

/** Flags every command accepts (main handles them before the command runs). */
export const GLOBAL_FLAGS = ['--help', '--quiet', '--verbose'] as const;

/** A command line as every command reads it: its flags, and positional arguments allowed. */
export function parseCommandLine<O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: O) {
  return parseArgs<{ args: string[]; allowPositionals: true; options: O }>({ args: argv, allowPositionals: true, options });
}

/**
 * The long flags a command takes: every "--name" of its synopsis (the usage text up to the first
 * blank line) and each "--name" that starts an options line ("  --name" or "  -o, --name"), in
 * order, once; --json with --format (its alias). Only those: the prose mentions other commands'
 * flags ("sign with compile --sign"), and did-you-mean or completion offering one of those gets
 * "unknown flag" from the command it was offered for.
 */
export function flagsOf(cmd: Pick<Command, 'usage'>): string[] {
  const seen = new Set<string>();
  const synopsis = cmd.usage.split(/\n\s*\n/)[0];
  for (const m of synopsis.matchAll(/(?<![\w-])--([a-z][a-z0-9-]*)/g)) seen.add(`--${m[1]}`);
  for (const m of cmd.usage.matchAll(/^ {2}(?:-[a-zA-Z], )?--([a-z][a-z0-9-]*)/gm)) seen.add(`--${m[1]}`);
  if (seen.has('--format')) seen.add('--json');
  return [...seen];
}

/** " (did you mean --format?)" or "". */
function suggestFlag(flag: string, cmd: Pick<Command, 'usage'>): string {
  const name = flag.replace(/=.*$/, '');
  const flags = flagsOf(cmd);
  // Habits from other tools, where spelling distance finds nothing: kubectl's --output json,
  // terraform's -json, a --no-color that has nothing to turn off here.
  if ((name === '--output' || name === '-output') && flags.includes('--format'))
    return ` (the output format is --format text|json|...${flags.includes('--out') ? '; -o/--out names the file it writes' : ''})`;
  if ((name === '--output' || name === '-output') && flags.includes('--out')) return ' (did you mean --out?)';
  if (/^--?(no-)?colou?r$/.test(name)) return ' (mtlsgate never colours its output: nothing to turn off)';
  // "-json" typed with one dash is asked about as "--json"; "-x" stays a short flag.
  const best = closest(/^-[^-]{2,}/.test(name) ? `-${name}` : name, [...flags, ...GLOBAL_FLAGS]);
  return best && best !== name ? ` (did you mean ${best}?)` : '';
}

/**
 * The flag as the user typed it: node:util names "-j" for "-json" (a run of short flags), and
 * "-json" is the terraform habit the suggestion should answer.
 */
function typedFlag(quoted: string, argv: readonly string[]): string {
  if (!/^-[^-]$/.test(quoted)) return quoted;
  const word = argv.find((a) => a.startsWith(quoted) && /^-[a-z][a-z0-9-]+(=.*)?$/i.test(a));
  return word === undefined ? quoted : word.replace(/=.*$/, '');
}

/**
 * node:util parseArgs errors are long and name no alternative ("Unknown option '--fromat'. To
 * specify a positional argument starting with a '-', ..."). This turns them into one short line.
 * Returns null for an error that is not a parse error.
 */
export function explainParseError(err: unknown, cmd: Pick<Command, 'usage'>, argv: readonly string[] = []): string | null {
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.code !== 'string' || !e.code.startsWith('ERR_PARSE_ARGS')) return null;
  const quoted = /'([^']*)'/.exec(e.message)?.[1] ?? '';
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
      const typed = typedFlag(quoted, argv);
      return `unknown flag ${typed}${suggestFlag(typed, cmd)}`;
    }
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument ${JSON.stringify(quoted)}`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      const flag = /--[a-z0-9-]+/.exec(quoted)?.[0] ?? quoted.split(' ')[0];
      if (/does not take an argument/.test(e.message)) return `${flag} takes no value`;
      if (/ambiguous/.test(e.message)) return `${flag} needs a value (to give one that starts with "-", write ${flag}=VALUE)`;
      return `${flag} needs a value`;
    }
    default:
      return e.message.split('\n')[0];
  }
}

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/**
 * A duration in milliseconds: "500ms", "30s", "2m", "1h", "1m30s". A bare number is refused:
 * nginx and kubectl users read `30` as seconds, this parser once read it as milliseconds, and a
 * timeout silently a thousand times shorter than meant is worse than an error that says which
 * unit to write. `source` names where the value came from (the flag or its variable).
 */
function parseDuration(value: string, source: string): number {
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text) && Number(text) !== 0) {
    throw new UsageError(
      `${source} ${JSON.stringify(value)} has no unit: write ${text}s for ${text} second${Number(text) === 1 ? '' : 's'} (or ${Math.round(Number(text) * 1000)}ms); a bare number used to mean milliseconds: ${text}ms keeps that`,
    );
  }
  let ms = 0;
  if (!/^0+$/.test(text)) {
    const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
    if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) {
      throw new UsageError(`${source} must be a duration like 500ms, 30s or 2m, not ${JSON.stringify(value)}`);
    }
    for (const p of parts) ms += Number(p[1]) * UNITS[p[2]];
  }
  if (!Number.isSafeInteger(Math.round(ms)) || Math.round(ms) <= 0) {
    throw new UsageError(`${source} must be a positive duration (e.g. 500ms, 30s), not ${JSON.stringify(value)}`);
  }
  return Math.round(ms);
}

/** MTLSGATE_TLS_CERT for --tls-cert, and so on. */
export function envName(flag: string): string {
  return `MTLSGATE_${flag.toUpperCase().replace(/-/g, '_')}`;
}

/** A value and where it came from: "--listen" or "MTLSGATE_LISTEN", for errors that name it. */
export interface Sourced {
  value: string;
  source: string;
}

/**
 * "127.0.0.1:8443", "[::1]:8443", "localhost:0", ":8443" (all interfaces), "8443" (loopback).
 * `example` is the flag's own default, shown in the error (the admin port is not the gateway's).
 */
export function parseHostPort(value: string, flag: string, orOff = false, example = '127.0.0.1:8443'): HostPort {
  const text = value.trim();
  const m = /^(?:(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):)?(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    const examplePort = example.slice(example.lastIndexOf(':') + 1);
    throw new UsageError(`${flag} must be HOST:PORT (e.g. ${example} or [::1]:${examplePort})${orOff ? ' or off' : ''}, not ${JSON.stringify(value)}`);
  }
  if (m[1] !== undefined) return { host: m[1], port };
  if (m[2] === undefined) return { host: '127.0.0.1', port }; // a bare port: loopback, the safe default
  return { host: m[2] === '' ? '0.0.0.0' : m[2], port };
}

/** A duration flag (or its variable) in milliseconds; `fallback` when neither is set. */
export function parseMs(value: Sourced | undefined, fallback: number): number {
  return value === undefined ? fallback : parseDuration(value.value, value.source);
}

/** A count flag (or its variable): a positive whole number; `fallback` when neither is set. */
export function parseCount(value: Sourced | undefined, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  const n = Number(value.value.trim());
  if (!/^\d+$/.test(value.value.trim()) || !Number.isSafeInteger(n) || n <= 0)
    throw new UsageError(`${value.source} must be a positive whole number, not ${JSON.stringify(value.value)}`);
  if (n > max) throw new UsageError(`${value.source} must be at most ${max}, not ${n}`);
  return n;
}

/** Flag values with the environment filled in under them (a flag wins over its variable). */
export function flagsWithEnv<K extends string>(
  values: Partial<Record<K, string | string[] | boolean | undefined>>,
  names: readonly K[],
  env: NodeJS.ProcessEnv,
): Partial<Record<K, Sourced>> {
  const out: Partial<Record<K, Sourced>> = {};
  for (const name of names) {
    const flag = values[name];
    const variable = envName(name);
    const fromEnv = env[variable];
    if (typeof flag === 'string') out[name] = { value: flag, source: `--${name}` };
    else if (fromEnv !== undefined && fromEnv !== '') out[name] = { value: fromEnv, source: variable };
  }
  return out;
}

/** MTLSGATE_* variables in `env` that no command reads, each with its likely intended name. */
export function unknownEnv(env: NodeJS.ProcessEnv, known: readonly string[]): string[] {
  return Object.keys(env)
    .filter((k) => k.startsWith('MTLSGATE_') && !known.includes(k))
    .sort()
    .map((k) => {
      const best = closest(k, known);
      return `${k}${best ? ` (did you mean ${best}?)` : ''}`;
    });
}

/**
 * The flags of the commands that change keys in a config directory and rewrite its bundle
 * (approve, portal): --config DIR, -o/--out OUT, and --bundle OUT, the old spelling of -o.
 */
export const CONFIG_OUT_OPTIONS = {
  config: { type: 'string' },
  out: { type: 'string', short: 'o' },
  bundle: { type: 'string' },
} as const;

/** The bundle those commands write: -o OUT, or --bundle OUT (the old spelling); -o wins. */
export function bundleOut(values: { out?: string; bundle?: string }): string | undefined {
  return values.out ?? values.bundle;
}

/** --at ISO (explain, who): the moment to decide at, in ms; now when not given. */
export function parseAt(value: string | undefined): number {
  const at = value === undefined ? Date.now() : Date.parse(value);
  if (Number.isNaN(at)) throw new UsageError(`--at must be an ISO time, got ${JSON.stringify(value)}`);
  return at;
}
