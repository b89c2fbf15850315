// The shape every `mtlsgate <subcommand>` module exports. Commands return their exit code:
// 0 ok, 1 config errors (compile/check) or a failed check, 2 usage or I/O errors.
export interface Command {
  name: string;
  /** One line for `mtlsgate --help`. */
  summary: string;
  /** Full usage text printed on `mtlsgate <name> --help` and on usage errors. */
  usage: string;
  run(argv: string[]): Promise<number>;
}

/** Thrown by commands for bad flags/arguments; main prints the message and usage, exits 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}
