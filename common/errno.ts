// What a one-line failure message names about an error: the system error code when there is
// one ("ENOENT", "EACCES": short, searchable, and the same in every locale), else the message.
export function errnoMessage(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err));
}
