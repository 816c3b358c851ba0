import { describe, expect, it } from 'vitest';
import { redact, registerSecret } from '../../../src/platform/redact.js';

describe('redact', () => {
  it.each([
    ['postgres://shop:s3cr%40t@db:5432/shop', 'postgres://shop:***@db:5432/shop'],
    ['s3://AKIA:wJalr/XUt@bucket', 's3://AKIA:***@bucket'],
    ['host=db password=abc123 user=x', 'host=db password=*** user=x'],
    ['PGPASSWORD=abc123 pg_dump', 'PGPASSWORD=*** pg_dump'],
    ['mysqldump --password=abc123 shop', 'mysqldump --password=*** shop'],
    ['nothing secret here', 'nothing secret here'],
  ])('%s', (input, expected) => {
    expect(redact(input)).toBe(expected);
  });

  it('hides registered literal secrets anywhere', () => {
    registerSecret('correct-horse-battery');
    expect(redact('token is correct-horse-battery, again correct-horse-battery')).toBe(
      'token is ***, again ***',
    );
  });
});
