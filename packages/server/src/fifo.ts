/**
 * A first-in-first-out queue on one array with a moving head: `shift` is O(1) and the
 * array is compacted once the consumed prefix is large, so a queue that never empties
 * does not grow without bound. Used by the write scheduler and the delivery queue.
 */
export class Fifo<T> {
  private readonly items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  /** The item `i` places from the front (0: the next to come out), or undefined. */
  peek(i = 0): T | undefined {
    return this.items[this.head + i];
  }

  shift(): T | undefined {
    const items = this.items;
    if (this.head === items.length) return undefined;
    const item = items[this.head];
    items[this.head++] = undefined;
    if (this.head === items.length) {
      items.length = 0;
      this.head = 0;
    } else if (this.head >= 4096 && this.head * 2 >= items.length) {
      items.copyWithin(0, this.head);
      items.length -= this.head;
      this.head = 0;
    }
    return item;
  }
}
