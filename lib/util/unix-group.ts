/**
 * A unix group name or number → gid, looked up in the text of /etc/group: shared by the milter server
 * (which chowns its socket) and milter.conf's load-time check, so both accept the same groups.
 * Pure; imports nothing.
 */

/** The gid of `group` (a name, or a number taken as it is) in `groupFileText`, or undefined. */
export function findGroupId(group: string, groupFileText: string): number | undefined {
  if (/^\d+$/.test(group)) return Number(group);
  for (const line of groupFileText.split('\n')) {
    const f = line.split(':');
    if (f.length >= 3 && f[0] === group && /^\d+$/.test(f[2]!)) return Number(f[2]);
  }
  return undefined;
}
