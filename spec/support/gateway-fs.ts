/**
 * A ConfigIo for fixtures that name a gateway's own paths (spec/fixtures/config/valid/full.conf): its CA
 * file is the test CA, its socket directory exists and /etc/group has postfix; every other path is the
 * real file system.
 * Test support only; imports lib/config.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NODE_IO, type ConfigIo } from '../../lib/config';

export const TEST_CA_PEM = fs.readFileSync(path.resolve(__dirname, '../fixtures/tls/ca.crt'), 'utf8');

export const GATEWAY_FS: ConfigIo = {
  readFile: (file) => {
    if (file === '/etc/ssl/intake-ca.pem') return TEST_CA_PEM;
    if (file === '/etc/group') return 'root:x:0:\npostfix:x:114:\n';
    return NODE_IO.readFile(file);
  },
  isDirectory: (dir) => dir === '/var/spool/postfix/tdc' || NODE_IO.isDirectory(dir),
};
