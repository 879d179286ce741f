/**
 * The one connection rule (the gateway's): none for an empty queue, at least min_connections as soon
 * as there is a copy, one more per BACKLOG_PER_CONNECTION copies, never over max_connections.
 */
import { BACKLOG_PER_CONNECTION, connectionsWanted } from '../../../lib/forwarder';

describe('connectionsWanted', () => {
  it.each([
    [0, 0], [1, 3], [3, 3], [30, 3], [31, 4], [65, 7], [95, 10], [100, 10], [500, 10],
  ])('backlog %i → %i connections (min 3, max 10)', (backlog, wanted) => {
    expect(connectionsWanted(backlog, { minConnections: 3, maxConnections: 10 })).toBe(wanted);
  });

  it('counts one connection per BACKLOG_PER_CONNECTION copies', () => {
    expect(BACKLOG_PER_CONNECTION).toBe(10);
    expect(connectionsWanted(10 * BACKLOG_PER_CONNECTION + 1, { minConnections: 1, maxConnections: 100 })).toBe(11);
  });

  it('a min above max is held to max; nonsense limits still give at least one connection for a copy', () => {
    expect(connectionsWanted(2, { minConnections: 5, maxConnections: 3 })).toBe(3);
    expect(connectionsWanted(1, { minConnections: 0, maxConnections: 0 })).toBe(1);
    expect(connectionsWanted(-1, { minConnections: 3, maxConnections: 10 })).toBe(0);
    expect(connectionsWanted(Number.NaN, { minConnections: 3, maxConnections: 10 })).toBe(0);
  });
});
