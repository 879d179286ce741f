/**
 * `tdc-milter explain` as a command (dist/lib/main.js): exit 0 with the explanation, 1 for a broken
 * configuration file (every problem printed), 2 for bad options (with the usage).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runCliSync, writeConfig } from '../support/daemon-process';

const EXAMPLE = path.resolve(__dirname, '../../milter.conf.example');

describe('tdc-milter explain', () => {
  it('exit 0 and the decision per recipient for the example configuration', () => {
    const r = runCliSync(['explain', '--config', EXAMPLE, '--from', 'alice@partner.example', '--rcpt', 'lab1@lab.example.com', '--rcpt', 'bob@example.com']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^lab1@lab\.example\.com +lab +no +not journaled: tdc = no$/m);
    expect(r.stdout).toMatch(/^ {2}copy 1 to 33c48e-27xp9-05ecb4@beta\.cmd\.cisco\.com \(policy DEFAULT\) for 1 recipient\(s\): bob@example\.com$/m);
  });

  it('exit 1 with every problem of a broken file, 2 with the usage for bad options', () => {
    const conf = writeConfig('[tdc]\nmax_queue_age = soon\n');
    try {
      const bad = runCliSync(['explain', '--config', conf, '--from', 'a@b.example', '--rcpt', 'c@d.example']);
      expect(bad.status).toBe(1);
      expect(bad.stderr).toContain(`${conf}:2: max_queue_age: expected`);
    } finally {
      fs.rmSync(path.dirname(conf), { recursive: true, force: true });
    }
    const usage = runCliSync(['explain', '--from', 'a@b.example']);
    expect(usage.status).toBe(2);
    expect(usage.stderr).toMatch(/^tdc-milter explain: at least one --rcpt is required\nusage: tdc-milter explain /);
  });
});
