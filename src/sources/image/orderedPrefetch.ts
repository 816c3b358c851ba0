/**
 * Map items through an async loader with up to `depth` loads in flight,
 * yielding results in input order. Restore uses it to decrypt the next
 * blocks while the current one is written.
 */
export async function* orderedPrefetch<T, R>(
  items: Iterable<T>,
  depth: number,
  load: (item: T, index: number) => Promise<R>,
): AsyncGenerator<R> {
  const queue: Promise<R>[] = [];
  const iterator = items[Symbol.iterator]();
  let index = 0;
  let done = false;
  const fill = () => {
    while (!done && queue.length < depth) {
      const next = iterator.next();
      if (next.done) {
        done = true;
        break;
      }
      const p = load(next.value, index++);
      // Failures surface when the item is awaited in order; do not let them go unhandled before that.
      p.catch(() => {});
      queue.push(p);
    }
  };
  fill();
  while (queue.length > 0) {
    const head = queue.shift() as Promise<R>;
    const value = await head;
    fill();
    yield value;
  }
}
