// The cap on keys per developer (`portal --developer-key-limit N|off`). The submission limiter
// bounds how fast a developer adds keys (30 an hour); this bounds how many they hold, so one
// account cannot grow the config directory and the bundle every gateway loads without end.
// The count is read from the key files under DIR/keys/portal whose `owner:` is the developer,
// under the directory lock the issuer holds while it writes, so two requests (this portal's,
// or another portal process's) cannot both take the last place, and a key an admin denied
// (its file removed) frees its place at once. Every file counts, whatever its state: awaiting
// approval, active, switched off or expired, because each stays in the directory and the
// bundle until the platform team removes it; not counting them would let a developer switch
// off (or let expire, with a short-lived certificate of their own) and ask again, without end.
import { readFileSync } from 'node:fs';
import { keyFilePath, parsePortalKey, portalKeyIds } from './key-file.ts';

export const DEFAULT_DEVELOPER_KEY_LIMIT = 20;

// An owner made of these characters appears verbatim in any way YAML writes it (plain, or
// quoted without escapes), so a file without that text cannot be theirs: it is skipped
// without a parse. Any other owner has every file parsed.
const VERBATIM = /^[\x21-\x7e]+$/;
const ESCAPED = /["'\\]/;

/** How many portal key files in `configDir` name `owner` as theirs. */
export function countOwnedKeys(configDir: string, owner: string): number {
  const verbatim = VERBATIM.test(owner) && !ESCAPED.test(owner);
  let count = 0;
  for (const id of portalKeyIds(configDir)) {
    let text: string;
    try {
      text = readFileSync(keyFilePath(configDir, id), 'utf8');
    } catch {
      continue; // removed since the listing (by hand: the lock covers only mtlsgate's own edits)
    }
    if (verbatim && !text.includes(owner)) continue;
    if (parsePortalKey(text, id)?.owner === owner) count++;
  }
  return count;
}

/** The refusal's text, naming the count and the cap; null while the developer is under it. */
export function keyLimitProblem(configDir: string, owner: string, limit: number | null): string | null {
  if (limit === null) return null;
  const held = countOwnedKeys(configDir, owner);
  if (held < limit) return null;
  return (
    `You have ${held} ${held === 1 ? 'key' : 'keys'} in this portal, and it issues at most ${limit} to one developer. ` +
    'Keys that are switched off, expired or awaiting approval count too, until the platform team removes them: ask them to remove one you no longer use.'
  );
}
