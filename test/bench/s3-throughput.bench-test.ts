/**
 * Throughput of the S3 backend against the loopback Swift server for several
 * maxConnections settings. Opt-in (it moves about 2 GiB): LIFEBOAT_S3_BENCH=1
 * npx vitest run --config test/bench/vitest.bench.config.ts. Prints a table and
 * checks every object read back byte for byte.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Storage } from '../../src/storage/s3/index.js';
import { forEachLimited } from '../../src/storage/s3/parallel.js';
import { s3ServerRunnable, startS3Server, type S3TestServer } from '../helpers/s3server.js';

const MIB = 1024 * 1024;
const OBJECTS = 8;
const OBJECT_SIZE = 32 * MIB;
const SETTINGS = [1, 2, 4, 8, 16];

describe.runIf(s3ServerRunnable && process.env.LIFEBOAT_S3_BENCH === '1')(
  'S3 throughput on loopback Swift',
  () => {
    let server: S3TestServer;
    beforeAll(async () => {
      server = await startS3Server();
    });
    afterAll(async () => {
      await server?.stop();
    });

    it('puts and gets large objects with different maxConnections', { timeout: 1_800_000 }, async () => {
      // One random buffer, made distinct per object by its first bytes, so generating data costs nothing measurable.
      const base = randomBytes(OBJECT_SIZE);
      const bodies = Array.from({ length: OBJECTS }, (_, i) => {
        const body = Buffer.from(base);
        body.writeUInt32BE(i, 0);
        return body;
      });
      const digests = bodies.map((b) => createHash('sha256').update(b).digest('hex'));
      const rows: string[] = [];
      for (const maxConnections of SETTINGS) {
        const bucket = await server.createBucket();
        const storage = await S3Storage.open(`s3://${bucket}/bench`, {
          endpoint: server.endpoint,
          region: server.region,
          accessKeyId: server.accessKeyId,
          secretAccessKey: server.secretAccessKey,
          maxConnections,
        });
        try {
          const keys = bodies.map((_, i) => `packs/${i}`);
          const putMs = await timed(() =>
            forEachLimited(keys, maxConnections, (key) => storage.put(key, bodies[Number(key.slice(6))]!)),
          );
          const single = Buffer.concat([base, base, base, base]); // 128 MiB in one put
          const singlePutMs = await timed(() => storage.put('packs/single', single));
          const seen: string[] = [];
          const getMs = await timed(() =>
            forEachLimited(keys, maxConnections, async (key) => {
              const hash = createHash('sha256');
              for await (const chunk of await storage.get(key)) hash.update(chunk as Buffer);
              seen[Number(key.slice(6))] = hash.digest('hex');
            }),
          );
          expect(seen).toEqual(digests);
          const total = OBJECTS * OBJECT_SIZE;
          rows.push(
            `maxConnections=${String(maxConnections).padStart(2)}: ` +
              `put ${rate(total, putMs)} MiB/s, get ${rate(total, getMs)} MiB/s ` +
              `(${OBJECTS} × ${OBJECT_SIZE / MIB} MiB, ${maxConnections} at a time); ` +
              `one 128 MiB put ${rate(single.length, singlePutMs)} MiB/s`,
          );
          await storage.deleteMany([...keys, 'packs/single']);
        } finally {
          await storage.close();
        }
      }
      console.log(`S3 throughput (loopback Swift, this machine):\n${rows.join('\n')}`);
    });
  },
);

async function timed(run: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await run();
  return performance.now() - start;
}

function rate(bytes: number, ms: number): string {
  return ((bytes / MIB / ms) * 1000).toFixed(0).padStart(4);
}
