// URLs as they may be shown (/health, logs, error messages): a bundle URL can carry a secret
// in its query string (a presigned S3/GCS link) or its userinfo (user:password@). Both are
// replaced; scheme, host, port and path stay, so an operator still sees where it points.

/** `https://host/path?REDACTED`; anything that is not an absolute URL comes back unchanged. */
export function redactUrl(text: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) return text;
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    // Unparseable: keep the scheme and drop everything that could hold a secret.
    return text.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, '$1REDACTED@').replace(/[?#].*$/s, '?REDACTED');
  }
  const userinfo = u.username !== '' || u.password !== '' ? 'REDACTED@' : '';
  const query = u.search !== '' ? '?REDACTED' : '';
  return `${u.protocol}//${userinfo}${u.host}${u.pathname}${query}`;
}

/** Every URL inside a message (an error from an HTTP client quotes the URL it fetched). */
export function redactUrlsIn(message: string): string {
  return message.replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi, (m) => redactUrl(m));
}

/** Loopback listen addresses: the admin listener is meant to stay on one of these. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\./.test(host);
}
