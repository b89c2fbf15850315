// Access rights: does the key have this API, and (when its right lists allowed_urls) does one
// entry match the path after the listen path and the method.
import { refusal, type Refusal } from './auth.ts';
import type { PreparedApi, PreparedKey } from './snapshot.ts';

/** `rest` is the normalised path after the listen path, starting with "/". */
export function checkAccess(key: PreparedKey, api: PreparedApi, rest: string, method: string): Refusal | null {
  const urls = key.rights.get(api.id);
  if (urls === undefined) return refusal('access.api_denied');
  if (urls === null) return null;
  for (const allowed of urls) {
    if ((allowed.methods === null || allowed.methods.has(method)) && allowed.pattern.test(rest)) return null;
  }
  return refusal('access.url_denied');
}
