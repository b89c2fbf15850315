// The request form and its submission: a plan, a public certificate and the signature of the
// one-time challenge (proof of possession). Rate-limited per client; CSRF-protected; on a
// loopback-only portal the answer carries a secret receipt, on a signed-in portal the key
// belongs to the signed-in subject.
import { apiUrl } from './catalog.ts';
import { errorsForViewer } from './config-report.ts';
import { catalogNow, type PortalContext } from './context.ts';
import { isCrossSite, STALE_FORM } from './csrf.ts';
import { BodyTooLarge, developerProblem, MAX_BODY_BYTES, parseRequestForm, readCappedBody, type RequestForm, UnsupportedForm } from './form.ts';
import type { Exchange } from './http.ts';
import type { IssueOutcome } from './issue-key.ts';
import { type FormError, type FormValues, requestPage } from './page.ts';
import { userLabel } from './session.ts';
import { answerWaitExpired, StartupWaitExpired } from './startup.ts';
import { containsPrivateKey } from '../cert/private-key.ts';
import { MAX_CERT_BYTES } from './validate-cert.ts';

export const EMPTY_VALUES: FormValues = { policy: '', developer: '', certificate: '' };

/** The request form's answer: its status, what the form shows again, and the challenge it keeps (a new one when absent). */
export interface FormAnswer {
  status: number;
  values: FormValues;
  errors: FormError[];
  /** More response headers (Retry-After on a 429). */
  extra?: Record<string, string>;
  challenge?: string;
}

export async function renderForm(ctx: PortalContext, ex: Exchange, { status, values, errors, extra = {}, challenge }: FormAnswer): Promise<void> {
  const token = ex.csrfToken();
  const { catalog, broken, starting } = await catalogNow(ctx);
  const model = {
    chrome: ex.chrome(),
    catalog,
    csrfToken: token,
    challenge: ctx.challenges.challengeFor(ex.csrfCookie(), challenge),
    values,
    errors,
    configBroken: broken,
    starting,
  };
  ex.html(status, requestPage(model), extra);
}

/** A refusal: JSON errors for API clients, the form again (with the messages) for browsers. */
export async function refuse(ctx: PortalContext, ex: Exchange, answer: FormAnswer): Promise<void> {
  const errors = errorsForViewer(ctx, ex, answer.errors);
  if (ex.wantsJson()) {
    ex.json(answer.status, { errors: errors.map(({ field, message, details, code }) => ({ field, message, details, code })) }, answer.extra);
    return;
  }
  await renderForm(ctx, ex, { ...answer, errors });
}

/**
 * The checks every form post that submits something makes first: same site, within the
 * client's submission budget (when `limited`), a readable body under the cap. Answers and
 * returns null when one fails.
 */
export async function readSubmission(
  ctx: PortalContext,
  ex: Exchange,
  limited: boolean,
  refuseWith: (status: number, errors: FormError[], extra?: Record<string, string>) => Promise<void>,
): Promise<RequestForm | null> {
  if (isCrossSite(ex.req)) {
    await refuseWith(403, [{ field: null, message: 'This form was sent from another site and was refused. Open the portal and submit it from there.' }]);
    return null;
  }
  if (limited) {
    const wait = ctx.limiter.take(ex.clientKeys());
    if (wait > 0) {
      ctx.logger?.warn({ client: ex.clientKeys(), address: ex.req.socket.remoteAddress, retry_after: wait }, 'portal submission rate-limited');
      // The body is not read: answer, then drop the connection.
      ex.res.on('finish', () => ex.req.socket.destroy());
      await refuseWith(429, [{ field: null, message: `Too many submissions from you in a short time. Try again in ${Math.ceil(wait / 60)} minute(s).` }], {
        'retry-after': String(wait),
        connection: 'close',
      });
      return null;
    }
  }
  try {
    return await parseRequestForm(await readCappedBody(ex.req, MAX_BODY_BYTES), ex.req.headers['content-type']);
  } catch (err) {
    if (err instanceof BodyTooLarge) {
      ex.res.on('finish', () => ex.req.socket.destroy());
      await refuseWith(
        413,
        [
          {
            field: 'certificate',
            message: `The request is larger than ${MAX_BODY_BYTES / 1024} KiB. A client certificate is 1-3 KiB: submit only your own certificate (at most ${MAX_CERT_BYTES / 1024} KiB).`,
          },
        ],
        { connection: 'close' },
      );
      return null;
    }
    if (err instanceof UnsupportedForm) {
      await refuseWith(415, [{ field: null, message: `The form could not be read: ${err.message}.` }]);
      return null;
    }
    throw err;
  }
}

/** The certificate bytes of a form: the upload, unless the text area holds something (a private key is always refused). */
export function submittedCertificate(form: RequestForm): { certificate: Buffer; errors: FormError[] } {
  const errors: FormError[] = [];
  const pastedKey = containsPrivateKey(form.pasted);
  if (form.uploaded !== null && form.pasted.trim() !== '' && !pastedKey) {
    errors.push({ field: 'certificate', message: 'Either paste the certificate or choose its file, not both.' });
  }
  // A private key in the text area is refused even when a file was chosen too.
  const certificate = pastedKey || form.uploaded === null ? Buffer.from(form.pasted, 'utf8') : form.uploaded;
  return { certificate, errors };
}

/** What goes back into a form on a refusal: never anything that looks like a private key. */
export function safePasted(pasted: string): string {
  return containsPrivateKey(pasted) || pasted.length > MAX_CERT_BYTES ? '' : pasted;
}

export async function submitRequest(ctx: PortalContext, ex: Exchange): Promise<void> {
  const form = await readSubmission(ctx, ex, true, (status, errors, extra) => refuse(ctx, ex, { status, values: EMPTY_VALUES, errors, extra }));
  if (form === null) return;
  const values: FormValues = { policy: form.policy, developer: form.developer, certificate: safePasted(form.pasted) };
  if (!ex.csrfValid(form.csrf)) {
    await refuse(ctx, ex, {
      status: 403,
      values,
      errors: [{ field: null, message: `${STALE_FORM} Check your entries and submit again.` }],
    });
    return;
  }
  const user = ex.session?.user;
  const fieldErrors: FormError[] = [];
  const developer = user ? userLabel(user) : form.developer;
  if (!user) {
    const problem = developerProblem(form.developer);
    if (problem) fieldErrors.push({ field: 'developer', message: problem });
  }
  const { certificate, errors } = submittedCertificate(form);
  fieldErrors.push(...errors);
  const binding = ex.csrfCookie();
  let outcome: IssueOutcome;
  try {
    outcome = await ctx.issuer.issue(
      {
        policy: form.policy,
        developer,
        certificate,
        fieldErrors,
        owner: user?.sub,
        proof: { challenge: form.challenge, signature: form.signature },
        consumeChallenge: (challenge) => ctx.challenges.consume(binding, challenge),
      },
      ex.waitDeadline,
    );
  } catch (err) {
    // Waited for the start-up compile past its deadline: not processed (its challenge stays unused).
    if (!(err instanceof StartupWaitExpired)) throw err;
    ctx.logger?.info({ waited_ms: err.waitedMs, user: user?.sub ?? null }, 'portal request not processed: the start-up compile was not done by its deadline');
    return answerWaitExpired(ctx.startup, ex, err);
  }
  if (!outcome.ok) {
    ctx.logger?.info(
      { problems: outcome.errors.map((e) => e.field ?? 'request'), cert_problem: outcome.certProblem ?? null, status: outcome.status, user: user?.sub ?? null },
      'portal request refused',
    );
    await refuse(ctx, ex, { status: outcome.status, values, errors: outcome.errors, challenge: form.challenge });
    return;
  }
  ctx.logger?.info(
    { key: outcome.keyId, policy: outcome.entry.policy, cert_sha256: outcome.fingerprint, pending: outcome.pending, owner: user?.sub ?? null },
    'portal key issued',
  );
  if (ex.wantsJson()) {
    ex.json(201, {
      key_id: outcome.keyId,
      fingerprint: `sha256:${outcome.fingerprint}`,
      status: outcome.pending ? 'pending_approval' : 'active',
      policy: outcome.entry.policy,
      ...(user ? { owner: user.sub } : { receipt: outcome.receipt }),
      curl: outcome.entry.apis.map((a) => `curl --cert your-cert.pem --key your-key.pem ${apiUrl(ctx.gatewayUrl, a)}`),
    });
    return;
  }
  // Post/redirect/get: reloading the result page does not submit again.
  ex.redirect(user ? `/keys/${outcome.keyId}?done=issued` : `/requests/${outcome.keyId}?receipt=${encodeURIComponent(outcome.receipt)}&issued=1`);
}
