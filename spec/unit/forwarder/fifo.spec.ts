/** The waiting line (linked FIFO). */
import { Fifo } from '../../../lib/forwarder/fifo';

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
