// The one way a count is written with its noun: "1 error", "2 errors", "1 entry", "3 entries".
// Shared by the CLI, the compiler's reports and the access tools (never "1 errors").

/** "1 API", "2 APIs", "0 keys"; `pluralForm` for nouns that do not just take an "s". */
export function count(n: number, singular: string, pluralForm = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : pluralForm}`;
}
