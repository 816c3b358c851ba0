/** A small database exercising what a dump must carry faithfully. */
import { sql } from './pgTestServer.js';

export const SAMPLE_SCHEMA = `
  CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
  CREATE DOMAIN positive_int AS integer CHECK (VALUE > 0);
  CREATE TABLE accounts (
    id serial PRIMARY KEY,
    owner text NOT NULL,
    balance numeric(12, 2) NOT NULL DEFAULT 0,
    feeling mood,
    created timestamptz NOT NULL DEFAULT '2024-01-01T00:00:00Z'
  );
  CREATE INDEX accounts_owner_idx ON accounts (lower(owner));
  CREATE TABLE "Weird Name; ""x"" ü" (
    "Col ""q""" positive_int,
    data bytea,
    j jsonb,
    f float8,
    d date,
    iv interval,
    arr text[]
  );
  CREATE SCHEMA other;
  CREATE TABLE other.items (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id int REFERENCES accounts (id),
    v text UNIQUE,
    total numeric GENERATED ALWAYS AS (id * 2) STORED
  );
  CREATE TABLE nopk (a int, b text);
  CREATE VIEW rich AS SELECT id, owner FROM accounts WHERE balance > 100;
  CREATE MATERIALIZED VIEW owner_count AS SELECT count(*) AS n FROM accounts;
  CREATE SEQUENCE ticket_seq START 100 INCREMENT 5;
  CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.v := coalesce(NEW.v, 'x'); RETURN NEW; END $$;
  CREATE TRIGGER items_touch BEFORE INSERT ON other.items FOR EACH ROW EXECUTE FUNCTION touch();
  CREATE TABLE parted (k int, v text) PARTITION BY RANGE (k);
  CREATE TABLE parted_low PARTITION OF parted FOR VALUES FROM (0) TO (100);
  CREATE TABLE parted_high PARTITION OF parted FOR VALUES FROM (100) TO (1000);
`;

export const SAMPLE_DATA = `
  INSERT INTO accounts (owner, balance, feeling)
    SELECT 'owner ' || g, g * 10.5, (ARRAY['sad','ok','happy']::mood[])[1 + g % 3] FROM generate_series(1, 500) g;
  INSERT INTO "Weird Name; ""x"" ü" VALUES
    (1, (SELECT string_agg(set_byte('\\x00'::bytea, 0, b), ''::bytea) FROM generate_series(0, 255) b),
     '{"a": [1, 2, {"b": null}], "ü": "\\u00e9"}', 'NaN', '2000-02-29', '1 year 2 mons 3 days 04:05:06.789', ARRAY['a', NULL, 'c,d']),
    (2, NULL, NULL, '-0', 'infinity', NULL, '{}'),
    (3, '\\xdeadbeef', '[]', 1e-300, '0001-01-01 BC', '-1 day', NULL),
    (4, '', 'null', 'Infinity', NULL, '0', ARRAY['"quoted"', E'tab\\there', E'new\\nline']);
  INSERT INTO other.items (account_id, v) SELECT 1 + g % 500, 'item ' || g FROM generate_series(1, 2000) g;
  INSERT INTO other.items (account_id) VALUES (7);
  INSERT INTO nopk VALUES (1, 'dup'), (1, 'dup'), (NULL, NULL), (2, E'back\\\\slash');
  INSERT INTO parted SELECT g, 'v' || g FROM generate_series(0, 999) g;
  SELECT nextval('ticket_seq'), nextval('ticket_seq');
  REFRESH MATERIALIZED VIEW owner_count;
`;

/** Create the sample schema and data in `database`. */
export async function populateSample(database: string): Promise<void> {
  await sql(database, SAMPLE_SCHEMA);
  await sql(database, SAMPLE_DATA);
}
