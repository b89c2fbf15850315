// The shape every `mtlsgate <subcommand>` module exports. Commands return their exit code:
// 0 ok, 1 config errors (compile/check) or a failed check, 2 usage or I/O errors.
// Help, `help COMMAND`, did-you-mean and shell completion are generic over this shape: a
// command's flags are the `--name` words of its usage line and of its options lines (flagsOf),
// so a new command needs no other registration than its entry in cli/registry.ts. Reserved for
// every command (main handles them before `run` sees argv): -h/--help, -q/--quiet, -v/--verbose.
// Use --format and -o/--out for output, "-" for stdin/stdout, and cli/report.ts for the JSON
// envelope.
export interface Command {
  name: string;
  /** One line for `mtlsgate --help`. */
  summary: string;
  /** Full usage text printed on `mtlsgate <name> --help` and `mtlsgate help <name>`. */
  usage: string;
  run(argv: string[]): Promise<number>;
  /** Environment variables it reads; with these set, an unknown MTLSGATE_* variable is warned about. */
  env?: readonly string[];
}

/** Thrown by commands for bad flags/arguments; main prints the message and usage, exits 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}
