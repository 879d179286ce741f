/** The waiting line (linked FIFO) and the global connection cap (ConnectionSlots). */
import { Fifo } from '../../../lib/forwarder/fifo';
import { ConnectionSlots } from '../../../lib/forwarder/connection-slots';

describe('Fifo', () => {
  it('pushes, unshifts, shifts and removes from the middle', () => {
    const f = new Fifo<number>();
    const n1 = f.push(1);
    const n2 = f.push(2);
    f.push(3);
    f.unshift(0);
    expect([...f]).toEqual([0, 1, 2, 3]);
    f.remove(n2);
    f.remove(n2);
    expect([...f]).toEqual([0, 1, 3]);
    expect(f.size).toBe(3);
    expect(f.shift()).toBe(0);
    f.remove(n1);
    expect(f.shift()).toBe(3);
    expect(f.shift()).toBeUndefined();
    expect(f.size).toBe(0);
    f.push(7);
    expect([...f]).toEqual([7]);
  });
});

describe('ConnectionSlots', () => {
  it('lets max holders in, queues the rest in order and signals pressure', () => {
    let pressure = 0;
    const s = new ConnectionSlots(2, () => { pressure += 1; });
    const got: string[] = [];
    s.acquire(() => got.push('a'));
    s.acquire(() => got.push('b'));
    s.acquire(() => got.push('c'));
    s.acquire(() => got.push('d'));
    expect(got).toEqual(['a', 'b']);
    expect(pressure).toBe(2);
    expect(s.waiting).toBe(2);
    s.release();
    expect(got).toEqual(['a', 'b', 'c']);
    s.setMax(3);
    expect(got).toEqual(['a', 'b', 'c', 'd']);
    expect(s.open).toBe(3);
  });
});
