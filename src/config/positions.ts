/**
 * Map a path inside the configuration (`jobs.web.schedule`) to the line and column of the YAML
 * node it came from, so every problem can be reported where the user has to edit.
 */
import { isMap, isPair, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';
import type { PathSegment } from './finding.js';

export interface Position {
  line: number;
  column: number;
}

/**
 * Position of the value at `path` (or of its key, with at = 'key'). When the path does not
 * exist in the file (a missing key), the nearest existing ancestor's key is used: that is the
 * place where the missing key must be added.
 */
export function locate(
  doc: Document,
  lines: LineCounter,
  path: readonly PathSegment[],
  at: 'key' | 'value' = 'value',
): Position | undefined {
  let node: unknown = doc.contents;
  let keyNode: Node | undefined;
  let found = true;
  for (const segment of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && keyText(p.key) === String(segment));
      if (!pair) {
        found = false;
        break;
      }
      keyNode = pair.key as Node;
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number' && node.items[segment] !== undefined) {
      node = node.items[segment];
      keyNode = node as Node;
    } else {
      found = false;
      break;
    }
  }
  const valueNode = node as Node | null | undefined;
  // A block map or list starts on the line after its key; the key is where people look.
  const block = (isMap(valueNode) || isSeq(valueNode)) && !valueNode.flow;
  const useValue = found && at === 'value' && valueNode?.range && !(block && keyNode);
  const target = useValue ? valueNode : (keyNode ?? valueNode ?? undefined);
  const offset = target?.range?.[0];
  if (offset === undefined) return undefined;
  const pos = lines.linePos(offset);
  return { line: pos.line, column: pos.col };
}

function keyText(key: unknown): string | undefined {
  if (isScalar(key)) return String(key.value);
  if (typeof key === 'string' || typeof key === 'number') return String(key);
  return undefined;
}
