import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { tempDir } from './run-dir.js';

/** A throwaway self-signed certificate for 127.0.0.1, made with the system openssl (.ci/run installs it). */
export function selfSignedCert(): { certFile: string; keyFile: string } {
  const dir = tempDir('sl-tls-');
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  return { certFile, keyFile };
}
