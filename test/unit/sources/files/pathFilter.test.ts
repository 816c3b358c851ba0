import { describe, expect, it } from 'vitest';
import { createPathFilter } from '../../../../src/sources/files/pathFilter.js';

describe('createPathFilter', () => {
  it('excludes with gitignore semantics at any depth', () => {
    const f = createPathFilter([], ['*.log', 'node_modules/', '/srv/www/cache']);
    expect(f.excluded('srv/www/app.log', false)).toBe(true);
    expect(f.excluded('srv/www/node_modules', true)).toBe(true);
    expect(f.excluded('srv/www/node_modules', false)).toBe(false); // a file named node_modules
    expect(f.excluded('srv/www/cache', true)).toBe(true);
    expect(f.excluded('srv/other/cache', true)).toBe(false); // anchored pattern
    expect(f.excluded('srv/www/index.html', false)).toBe(false);
  });

  it('is case-sensitive', () => {
    const f = createPathFilter([], ['*.LOG']);
    expect(f.excluded('a/x.log', false)).toBe(false);
    expect(f.excluded('a/x.LOG', false)).toBe(true);
  });

  it('supports negation', () => {
    const f = createPathFilter([], ['*.log', '!keep.log']);
    expect(f.excluded('a/keep.log', false)).toBe(false);
    expect(f.excluded('a/drop.log', false)).toBe(true);
  });

  it('includes everything without include rules', () => {
    const f = createPathFilter([], []);
    expect(f.hasIncludes).toBe(false);
    expect(f.included('anything/at/all', false)).toBe(true);
  });

  it('includes matches and everything below a matching directory', () => {
    const f = createPathFilter(['*.conf', 'srv/www/'], []);
    expect(f.hasIncludes).toBe(true);
    expect(f.included('etc/nginx/nginx.conf', false)).toBe(true);
    expect(f.included('etc/nginx/mime.types', false)).toBe(false);
    expect(f.included('srv/www/a/b/c.html', false)).toBe(true);
  });

  it('ignores blank lines and comments and tolerates a leading slash', () => {
    const f = createPathFilter([], ['', '# comment', 'tmp/']);
    expect(f.excluded('/var/tmp', true)).toBe(true);
  });
});
