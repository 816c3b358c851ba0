/**
 * A loopback HTTP proxy for fault tests: sits between the S3 client and the
 * test server and, per request, can
 * - answer `503 SlowDown` with an S3 XML error body (throttling bursts), or
 *   any other S3 error status and code,
 * - cut the response body after N bytes with a TCP reset,
 * - forward N bytes of the response body and then go silent (a stall),
 * - cut the request body (an upload) after N bytes with a TCP reset,
 * - accept a request and never answer (a blackhole),
 * - add latency before forwarding.
 * Rules apply to the next `count` requests that match; everything else is
 * forwarded untouched (the Host header too, so SigV4 signatures stay valid).
 * It listens on and connects to 127.0.0.1 only. `log` records every request
 * and `maxInFlight` the most requests seen at once.
 */
import {
  Agent,
  createServer,
  request as httpRequest,
  type ClientRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';

export type FaultKind =
  'slowDown' | 'errorResponse' | 'resetResponse' | 'stallResponse' | 'resetRequest' | 'blackhole';

/** Which requests a rule applies to. */
export type RequestMatch = (req: {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
}) => boolean;

export interface FaultOptions {
  /** How many matching requests get the fault. Default 1; Infinity for all. */
  count?: number;
  /** Default: every request. */
  match?: RequestMatch;
}

export interface ProxiedRequest {
  method: string;
  path: string;
  range: string | undefined;
  status: number | undefined;
  fault: FaultKind | undefined;
}

interface Rule {
  kind: FaultKind;
  remaining: number;
  match: RequestMatch;
  afterBytes: number;
  /** For answered faults: the HTTP status and S3 error code. */
  status?: number;
  code?: string;
}

function errorBody(code: string): string {
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code>` +
    `<Message>injected by the fault proxy</Message><RequestId>faultproxy</RequestId></Error>`
  );
}

/** Connection-level headers a proxy must not pass on; Node frames each side itself (a HEAD answer keeps no body). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-connection',
]);

/** `rawHeaders` without the hop-by-hop ones, as a flat [name, value, …] list. */
export function endToEnd(rawHeaders: string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (!HOP_BY_HOP.has(rawHeaders[i]!.toLowerCase())) kept.push(rawHeaders[i]!, rawHeaders[i + 1]!);
  }
  return kept;
}

/**
 * Send `req` on to the upstream server on loopback `port` (the caller writes or pipes the body into the returned
 * request) and hand its answer to `onAnswer`. When the upstream request fails, the client gets a 502 (after
 * `onBadGateway`) or, once an answer has started, a broken connection.
 */
export function requestUpstream(
  upstream: { port: number; agent: Agent },
  req: IncomingMessage,
  res: ServerResponse,
  onAnswer: (answer: IncomingMessage) => void,
  onBadGateway?: () => void,
): ClientRequest {
  const forwarded = httpRequest({
    host: '127.0.0.1',
    port: upstream.port,
    method: req.method,
    path: req.url,
    headers: endToEnd(req.rawHeaders),
    agent: upstream.agent,
  });
  let received: IncomingMessage | undefined;
  forwarded.on('error', () => {
    // Swift sends a stray chunk terminator after HEAD answers with errors; once the answer is complete, that is harmless.
    if (received?.complete) {
      if (!res.writableEnded) res.end();
      return;
    }
    if (!res.headersSent && !res.destroyed) {
      onBadGateway?.();
      res.writeHead(502).end();
    } else res.destroy();
  });
  forwarded.on('response', (answer) => {
    received = answer;
    onAnswer(answer);
  });
  return forwarded;
}

/** Requests for object data: GET with a key (not a bucket listing). */
export const objectGets: RequestMatch = (r) => r.method === 'GET' && /^\/[^/?]+\/[^?]+/.test(r.path);
/** Uploads: PUT with a body (PutObject, UploadPart). */
export const objectPuts: RequestMatch = (r) => r.method === 'PUT' && /^\/[^/?]+\/[^?]+/.test(r.path);

export class FaultProxy {
  readonly log: ProxiedRequest[] = [];
  /** The most requests that were in flight at the same time. */
  maxInFlight = 0;
  private inFlight = 0;
  private rules: Rule[] = [];
  private latencyMs = 0;
  private readonly sockets = new Set<Socket>();
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 64 });
  private port = 0;

  private constructor(
    private readonly server: Server,
    private readonly upstreamPort: number,
  ) {
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.handle(req, res));
  }

  /** Start a proxy to `upstream` (`http://127.0.0.1:<port>`). */
  static async start(upstream: string): Promise<FaultProxy> {
    const target = new URL(upstream);
    if (target.hostname !== '127.0.0.1' || target.protocol !== 'http:') {
      throw new Error(`the fault proxy only forwards to http://127.0.0.1, not ${upstream}`);
    }
    const server = createServer();
    server.keepAliveTimeout = 30_000;
    const proxy = new FaultProxy(server, Number(target.port));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    proxy.port = (server.address() as { port: number }).port;
    return proxy;
  }

  /** The proxy's address, to use as the S3 endpoint (still known after close()). */
  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Answer the next matching requests with 503 SlowDown. */
  slowDown(opts: FaultOptions = {}): this {
    return this.add('slowDown', 0, opts, { status: 503, code: 'SlowDown' });
  }

  /** Answer the next matching requests with an S3 error, e.g. 501 NotImplemented. */
  errorResponse(status: number, code: string, opts: FaultOptions = {}): this {
    return this.add('errorResponse', 0, opts, { status, code });
  }

  /** Forward the next matching requests but reset the connection after `afterBytes` of the response body. */
  resetResponse(afterBytes: number, opts: FaultOptions = {}): this {
    return this.add('resetResponse', afterBytes, opts);
  }

  /** Forward the response headers and `afterBytes` of the body, then send nothing more. */
  stallResponse(afterBytes: number, opts: FaultOptions = {}): this {
    return this.add('stallResponse', afterBytes, opts);
  }

  /** Forward `afterBytes` of the request body, then reset both connections. */
  resetRequest(afterBytes: number, opts: FaultOptions = {}): this {
    return this.add('resetRequest', afterBytes, opts);
  }

  /** Accept the next matching requests and never answer them. */
  blackhole(opts: FaultOptions = {}): this {
    return this.add('blackhole', 0, opts);
  }

  /** Wait `ms` before forwarding every request (0 to stop). */
  latency(ms: number): this {
    this.latencyMs = ms;
    return this;
  }

  /** Drop every rule and the latency (the log stays). */
  clear(): this {
    this.rules = [];
    this.latencyMs = 0;
    return this;
  }

  /** Requests that got a given fault. */
  faulted(kind: FaultKind): ProxiedRequest[] {
    return this.log.filter((r) => r.fault === kind);
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.agent.destroy();
    if (this.server.listening) await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private add(
    kind: FaultKind,
    afterBytes: number,
    opts: FaultOptions,
    answer: { status?: number; code?: string } = {},
  ): this {
    this.rules.push({
      kind,
      afterBytes,
      remaining: opts.count ?? 1,
      match: opts.match ?? (() => true),
      ...answer,
    });
    return this;
  }

  private take(req: IncomingMessage): Rule | undefined {
    const view = { method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers };
    const rule = this.rules.find((r) => r.remaining > 0 && r.match(view));
    if (rule) rule.remaining--;
    return rule;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rule = this.take(req);
    const entry: ProxiedRequest = {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      range: req.headers.range,
      status: undefined,
      fault: rule?.kind,
    };
    this.log.push(entry);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    let done = false;
    const finish = (): void => {
      if (!done) this.inFlight--;
      done = true;
    };
    res.on('close', finish);

    if (this.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
    if (rule?.kind === 'blackhole') return; // read nothing, answer nothing; close() ends it
    if (rule?.status !== undefined) {
      const body = errorBody(rule.code ?? 'InternalError');
      const status = rule.status;
      req.resume();
      req.on('end', () => {
        entry.status = status;
        res.writeHead(status, {
          'content-type': 'application/xml',
          'content-length': Buffer.byteLength(body),
          'retry-after': '0',
        });
        res.end(body);
      });
      return;
    }
    this.forward(req, res, entry, rule);
  }

  private forward(
    req: IncomingMessage,
    res: ServerResponse,
    entry: ProxiedRequest,
    rule: Rule | undefined,
  ): void {
    const upstream = requestUpstream(
      { port: this.upstreamPort, agent: this.agent },
      req,
      res,
      (answer) => this.answer(answer, res, entry, rule),
      () => (entry.status = 502),
    );
    if (rule?.kind !== 'resetRequest') {
      req.pipe(upstream);
      return;
    }
    let forwarded = 0;
    req.on('data', (chunk: Buffer) => {
      const room = rule.afterBytes - forwarded;
      if (room <= 0) return;
      upstream.write(chunk.subarray(0, room));
      forwarded += Math.min(room, chunk.length);
      if (forwarded >= rule.afterBytes) {
        upstream.destroy();
        req.socket.resetAndDestroy();
      }
    });
    req.on('end', () => {
      if (forwarded < rule.afterBytes) upstream.end();
    });
  }

  /** Pass the upstream answer on, cut off or stalled where a rule says so. */
  private answer(
    answer: IncomingMessage,
    res: ServerResponse,
    entry: ProxiedRequest,
    rule: Rule | undefined,
  ): void {
    entry.status = answer.statusCode;
    res.writeHead(answer.statusCode ?? 502, answer.statusMessage, endToEnd(answer.rawHeaders));
    if (rule?.kind !== 'resetResponse' && rule?.kind !== 'stallResponse') {
      answer.pipe(res);
      return;
    }
    let sent = 0;
    const cut = (): void => {
      answer.destroy();
      // Let the client read the bytes before the reset: a RST makes the receiver drop whatever it has not read
      // yet, so on a loaded machine a short pause loses part of them. A stall keeps the connection silent.
      if (rule.kind === 'resetResponse') setTimeout(() => res.socket?.resetAndDestroy(), 150);
    };
    if (rule.afterBytes === 0) {
      res.flushHeaders();
      cut();
      return;
    }
    answer.on('data', (chunk: Buffer) => {
      if (sent >= rule.afterBytes) return;
      const room = rule.afterBytes - sent;
      res.write(chunk.subarray(0, room));
      sent += Math.min(room, chunk.length);
      if (sent >= rule.afterBytes) cut();
    });
    answer.on('end', () => {
      if (sent < rule.afterBytes) res.end(); // the body was shorter than the cut-off
    });
  }
}
