/** Drop userinfo and query values from a URL (Azure keys and tokens travel there sometimes). */
export function redactUrl(url: string): string {
  const u = new URL(url);
  u.username = '';
  u.password = '';
  for (const key of [...u.searchParams.keys()]) if (!/^api-version$/i.test(key)) u.searchParams.set(key, 'redacted');
  return u.toString();
}
