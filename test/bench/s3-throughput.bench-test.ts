/**
 * Throughput of the S3 backend against the loopback Swift server for several
 * maxConnections settings, and pack-sized puts as one PutObject against
 * multipart. Opt-in (it moves about 3 GiB): LIFEBOAT_S3_BENCH=1 npx vitest run
 * --config test/bench/vitest.bench.config.ts. Prints tables and checks every
 * object read back byte for byte. The whole-process comparison with restic is
 * test/bench/s3-vs-restic.mjs.
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
/** A default repository pack (16 MiB) plus its trailer, as the repository puts it. */
const PACK_SIZE = 17 * MIB;
const PACKS = 16;

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

    it(
      'stores repository packs with one PutObject rather than multipart',
      { timeout: 1_800_000 },
      async () => {
        // What a backup and a restore do with packs: 17 MiB bodies (a 16 MiB pack and its trailer) put
        // 4 at a time, then read back in 1 MiB ranges 4 at a time. multipartThreshold 8 MiB is the old
        // behaviour (3 parts per pack); the default (64 MiB) puts each pack with one request.
        const base = randomBytes(PACK_SIZE);
        const packs = Array.from({ length: PACKS }, (_, i) => {
          const body = Buffer.from(base);
          body.writeUInt32BE(i, 0);
          return body;
        });
        const rows: string[] = [];
        for (let round = 0; round < 2; round++) {
          for (const [label, multipartThreshold] of [
            ['multipart (threshold 8 MiB)', 8 * MIB],
            ['one PutObject (default)', undefined],
          ] as const) {
            const bucket = await server.createBucket();
            const storage = await S3Storage.open(`s3://${bucket}/bench`, {
              endpoint: server.endpoint,
              region: server.region,
              accessKeyId: server.accessKeyId,
              secretAccessKey: server.secretAccessKey,
              ...(multipartThreshold === undefined ? {} : { multipartThreshold }),
            });
            try {
              const keys = packs.map((_, i) => `data/${i}`);
              const cpu0 = process.cpuUsage();
              const putMs = await timed(() =>
                forEachLimited(keys, 4, (key) => storage.put(key, packs[Number(key.slice(5))]!)),
              );
              const ranges = keys.flatMap((key) =>
                Array.from({ length: Math.ceil(PACK_SIZE / MIB) }, (_, r) => ({ key, offset: r * MIB })),
              );
              const getMs = await timed(() =>
                forEachLimited(ranges, 4, async ({ key, offset }) => {
                  const length = Math.min(MIB, PACK_SIZE - offset);
                  const parts: Buffer[] = [];
                  for await (const chunk of await storage.get(key, { offset, length }))
                    parts.push(chunk as Buffer);
                  const got = Buffer.concat(parts);
                  const want = packs[Number(key.slice(5))]!.subarray(offset, offset + length);
                  if (!got.equals(want)) throw new Error(`${key} at ${offset} read back wrong`);
                }),
              );
              const cpu = process.cpuUsage(cpu0);
              rows.push(
                `${label.padEnd(28)} put ${rate(PACKS * PACK_SIZE, putMs)} MiB/s, ` +
                  `1 MiB range gets ${rate(PACKS * PACK_SIZE, getMs)} MiB/s, ` +
                  `client CPU ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s`,
              );
            } finally {
              await storage.close();
            }
          }
        }
        console.log(
          `S3 packs (${PACKS} × ${(PACK_SIZE / MIB).toFixed(0)} MiB, 4 at a time; loopback Swift):\n${rows.join('\n')}`,
        );
      },
    );
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
