// The compiler's report when the configuration does not compile (config file names, line
// excerpts, other teams' ids) is for the platform team: an admin sees it on the page, every
// other viewer a sentence saying the portal's log holds it, and the log gets it whole.
import type { PortalContext } from './context.ts';
import type { Exchange } from './http.ts';
import type { FormError } from './page.ts';

const REPORT_IN_LOG = 'The platform team can see why in the portal log.';

/** `errors` as this viewer may see them: details kept for an admin, logged and dropped for anyone else. */
export function errorsForViewer(ctx: PortalContext, ex: Exchange, errors: FormError[]): FormError[] {
  if (ex.session?.user.admin === true || !errors.some((e) => e.details)) return errors;
  return errors.map(({ details, ...rest }) => {
    if (!details) return rest;
    ctx.logger?.error({ report: details, user: ex.session?.user.sub ?? null }, 'portal: the configuration does not compile');
    return { ...rest, message: `${rest.message} ${REPORT_IN_LOG}` };
  });
}
