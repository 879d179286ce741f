import { VERSION } from '../../../lib/version';
import * as pkg from '../../../package.json';

it('lib/version.ts matches package.json', () => {
  expect(VERSION).toBe((pkg as { version: string }).version);
});
