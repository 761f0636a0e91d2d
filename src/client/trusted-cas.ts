import { existsSync, readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';

/** Where distributions keep the system CA bundle. */
const SYSTEM_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];

let cached: string[] | undefined;

/**
 * The CAs https endpoints are checked against: Node's bundled roots, the system bundle (so a
 * company CA installed on the machine works, as it does for curl), and NODE_EXTRA_CA_CERTS (which
 * Node itself stops adding once a `ca` option is given).
 */
export function trustedCas(env: NodeJS.ProcessEnv = process.env): string[] {
  if (cached) return cached;
  const cas = [...rootCertificates];
  const system = SYSTEM_BUNDLES.find((p) => existsSync(p));
  if (system) cas.push(readFileSync(system, 'utf8'));
  const extra = env.NODE_EXTRA_CA_CERTS;
  if (extra && existsSync(extra)) cas.push(readFileSync(extra, 'utf8'));
  cached = cas;
  return cas;
}
