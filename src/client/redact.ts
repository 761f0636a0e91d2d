/**
 * Removes secrets from text that may be written down (error messages from servers, which sometimes
 * echo a credential back). Secrets shorter than 8 characters are not scrubbed: too likely to match
 * ordinary words.
 */
export function createRedactor(secrets: readonly string[]): (text: string) => string {
  const list = [...new Set(secrets.filter((s) => s.length >= 8))].sort((a, b) => b.length - a.length);
  if (list.length === 0) return (text) => text;
  return (text) => {
    let out = text;
    for (const s of list) if (out.includes(s)) out = out.split(s).join('[redacted]');
    return out;
  };
}

/** The secret parts of request headers: every header value except a few known-public ones. */
export function headerSecrets(headers: Record<string, string>): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (name === 'content-type' || name === 'accept' || name === 'user-agent') continue;
    out.push(value);
    // `Bearer sk-…`: the token alone too, as servers quote it without the scheme.
    const m = value.match(/^\S+\s+(\S{8,})$/);
    if (m) out.push(m[1]!);
  }
  return out;
}
