/**
 * A doubly linked FIFO with O(1) push, unshift, shift and removal of any node: the waiting line
 * of the forwarder queue (copies leave from the middle when they expire).
 * Imports nothing.
 */

export interface FifoNode<T> {
  readonly value: T;
  prev: FifoNode<T> | undefined;
  next: FifoNode<T> | undefined;
  /** False once removed, so a second removal is a no-op. */
  linked: boolean;
}

export class Fifo<T> {
  #head: FifoNode<T> | undefined;
  #tail: FifoNode<T> | undefined;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** Append at the back. */
  push(value: T): FifoNode<T> {
    const node: FifoNode<T> = { value, prev: this.#tail, next: undefined, linked: true };
    if (this.#tail) this.#tail.next = node;
    else this.#head = node;
    this.#tail = node;
    this.#size += 1;
    return node;
  }

  /** Insert at the front. */
  unshift(value: T): FifoNode<T> {
    const node: FifoNode<T> = { value, prev: undefined, next: this.#head, linked: true };
    if (this.#head) this.#head.prev = node;
    else this.#tail = node;
    this.#head = node;
    this.#size += 1;
    return node;
  }

  /** Take from the front. */
  shift(): T | undefined {
    const node = this.#head;
    if (!node) return undefined;
    this.remove(node);
    return node.value;
  }

  remove(node: FifoNode<T>): void {
    if (!node.linked) return;
    node.linked = false;
    if (node.prev) node.prev.next = node.next;
    else this.#head = node.next;
    if (node.next) node.next.prev = node.prev;
    else this.#tail = node.prev;
    node.prev = undefined;
    node.next = undefined;
    this.#size -= 1;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let n = this.#head; n; n = n.next) yield n.value;
  }
}
