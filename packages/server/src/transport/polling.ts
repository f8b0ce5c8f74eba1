/**
 * HTTP long-polling transport: GET waits for packets (one payload per response), POST
 * delivers the client's packets. At most one GET and one POST may be in flight per
 * session; an overlapping request is refused and ends the session, as engine.io does.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { deflate, gzip } from "node:zlib";
import { decodePayload, ProtocolError, RECORD_SEPARATOR } from "@switchyard/protocol";
import type { OutboundPacket } from "../engine/outbound-packet.js";
import { EngineErrorCode } from "../errors.js";
import { sendEngineError } from "../http/respond.js";
import type { Transport, TransportOwner } from "./transport.js";

/** What the polling transport needs from its engine. */
export interface PollingContext {
  /** Headers every response carries (CORS, user hooks). */
  responseHeaders(req: IncomingMessage): OutgoingHttpHeaders;
  readonly maxHttpBufferSize: number;
  readonly compressionThreshold: number | false;
  /** Counts a request this transport refused (stats and `connection_error`). */
  onTransportRefusal(req: IncomingMessage, code: EngineErrorCode, name: string): void;
}

/** The response headers of a request when nothing adds any (shared; never written to). */
export const NO_HEADERS: OutgoingHttpHeaders = Object.freeze({});

const kPoll = Symbol("switchyard.poll");
type TaggedRequest = IncomingMessage & { [kPoll]?: PollingTransport };

/** A polling payload cannot hold more packets than bytes; this bounds the work per body. */
const MIN_PACKET_BYTES = 1;

export class PollingTransport implements Transport {
  readonly name = "polling" as const;
  owner: TransportOwner;
  private readonly ctx: PollingContext;
  private pollReq: IncomingMessage | undefined;
  private pollRes: ServerResponse | undefined;
  private dataReq: IncomingMessage | undefined;
  private ended = false;
  private inFlight = 0;

  constructor(owner: TransportOwner, ctx: PollingContext) {
    this.owner = owner;
    this.ctx = ctx;
  }

  get writable(): boolean {
    return this.pollRes !== undefined && !this.ended;
  }

  get idle(): boolean {
    return this.pollRes !== undefined && !this.ended;
  }

  get bufferedAmount(): number {
    return this.inFlight;
  }

  /** Routes a request of this session by method. */
  onRequest(req: IncomingMessage, res: ServerResponse): void {
    if (req.method === "GET") this.onPoll(req, res);
    else if (req.method === "POST") this.onData(req, res);
    else this.refuse(req, res, EngineErrorCode.BAD_REQUEST, "BAD_METHOD");
  }

  /** Answers the handshake GET with the open packet (and anything queued with it). */
  answerHandshake(
    req: IncomingMessage,
    res: ServerResponse,
    packets: readonly OutboundPacket[],
  ): void {
    this.pollReq = req;
    this.pollRes = res;
    this.send(packets, true);
  }

  private onPoll(req: IncomingMessage, res: ServerResponse): void {
    if (this.pollRes !== undefined) {
      this.refuse(req, res, EngineErrorCode.BAD_REQUEST, "POLL_OVERLAP");
      this.fail("transport error", "overlap from client");
      return;
    }
    if (this.ended) {
      this.refuse(req, res, EngineErrorCode.UNKNOWN_SID, "SESSION_ENDED");
      return;
    }
    this.pollReq = req;
    this.pollRes = res;
    (req as TaggedRequest)[kPoll] = this;
    // `on`, not `once`: removed when the poll is answered, so no wrapper per request.
    req.on("close", onPollClosed);
    this.owner.onWritable?.(this);
  }

  /** The client went away while its GET was waiting. */
  pollClosed(req: IncomingMessage): void {
    if (this.pollReq === req && this.pollRes !== undefined && !this.pollRes.writableEnded) {
      this.pollReq = undefined;
      this.pollRes = undefined;
      this.fail("transport close", "poll connection closed prematurely");
    }
  }

  private onData(req: IncomingMessage, res: ServerResponse): void {
    const headers = this.ctx.responseHeaders(req);
    if (this.dataReq !== undefined) {
      this.refuse(req, res, EngineErrorCode.BAD_REQUEST, "DATA_OVERLAP");
      this.fail("transport error", "data request overlap from client");
      return;
    }
    const max = this.ctx.maxHttpBufferSize;
    const declared = Number(req.headers["content-length"]);
    if (declared > max) {
      // Refused before reading a byte of it.
      this.ctx.onTransportRefusal(req, EngineErrorCode.BAD_REQUEST, "PAYLOAD_TOO_LARGE");
      refuseTooLarge(req, res, headers);
      this.fail(
        "payload too large",
        `request body of ${declared} bytes exceeds maxHttpBufferSize (${max})`,
      );
      return;
    }
    this.dataReq = req;
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      if (this.dataReq === req) this.dataReq = undefined;
    };
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        req.removeAllListeners("data");
        cleanup();
        this.ctx.onTransportRefusal(req, EngineErrorCode.BAD_REQUEST, "PAYLOAD_TOO_LARGE");
        refuseTooLarge(req, res, headers);
        this.fail("payload too large", `request body exceeds maxHttpBufferSize (${max})`);
        return;
      }
      chunks.push(chunk);
    });
    req.once("end", () => {
      if (this.dataReq !== req) return;
      cleanup();
      let packets: ReturnType<typeof decodePayload>;
      try {
        const body = chunks.length === 1 ? chunks[0]!.toString() : Buffer.concat(chunks).toString();
        packets = decodePayload(body, Math.ceil(max / MIN_PACKET_BYTES));
      } catch (err) {
        this.refuse(req, res, EngineErrorCode.BAD_REQUEST, "BAD_PAYLOAD");
        this.fail("parse error", err instanceof ProtocolError ? err.message : "bad payload");
        return;
      }
      res.writeHead(200, { ...headers, "Content-Type": "text/html", "Content-Length": 2 });
      res.end("ok");
      for (const p of packets) {
        if (this.ended) break;
        if (p.type === "close") {
          // As engine.io: the waiting GET ends with a noop, the session is gone.
          this.releasePoll("6");
          this.fail("transport close", "client sent a close packet");
          break;
        }
        this.owner.onPacket(p, this);
      }
    });
    req.once("error", cleanup);
    req.once("close", cleanup);
  }

  sendOne(packet: OutboundPacket, compress: boolean): void {
    this.send([packet], compress);
  }

  send(packets: readonly OutboundPacket[], compress: boolean): void {
    const req = this.pollReq;
    const res = this.pollRes;
    if (req === undefined || res === undefined) return;
    this.pollReq = undefined;
    this.pollRes = undefined;
    req.removeListener("close", onPollClosed);
    let payload = "";
    // UTF-8 length from each packet's memoized length (a broadcast measures once), plus
    // one byte per record separator.
    let bytes = packets.length > 0 ? packets.length - 1 : 0;
    for (let i = 0; i < packets.length; i++) {
      if (i > 0) payload += RECORD_SEPARATOR;
      const p = packets[i]!;
      payload += p.pollingText();
      bytes += p.pollingByteLength();
    }
    const base = this.ctx.responseHeaders(req);
    const headers: OutgoingHttpHeaders =
      base === NO_HEADERS
        ? { "Content-Type": "text/plain; charset=UTF-8" }
        : { ...base, "Content-Type": "text/plain; charset=UTF-8" };
    const threshold = this.ctx.compressionThreshold;
    const encoding =
      compress && threshold !== false && payload.length >= threshold
        ? pickEncoding(req)
        : undefined;
    if (encoding === undefined) {
      headers["Content-Length"] = bytes;
      res.writeHead(200, headers);
      res.end(payload);
      return;
    }
    const size = bytes;
    this.inFlight += size;
    (encoding === "gzip" ? gzip : deflate)(payload, (err, compressed) => {
      this.inFlight -= size;
      if (res.destroyed) return;
      if (err) {
        res.writeHead(500).end();
        return;
      }
      headers["Content-Encoding"] = encoding;
      headers["Content-Length"] = compressed.length;
      headers.Vary = "Accept-Encoding";
      res.writeHead(200, headers);
      res.end(compressed);
    });
  }

  close(): void {
    // The session queues a close packet before calling this; polling has nothing else to say.
    this.ended = true;
    this.releasePoll("1");
  }

  destroy(): void {
    this.ended = true;
    this.releasePoll("1");
    if (this.dataReq !== undefined) {
      this.dataReq.destroy();
      this.dataReq = undefined;
    }
  }

  /** Ends a waiting GET with one bodiless packet: "1" (close) or "6" (noop). */
  private releasePoll(packet: "1" | "6"): void {
    const req = this.pollReq;
    const res = this.pollRes;
    this.pollReq = undefined;
    this.pollRes = undefined;
    if (req === undefined || res === undefined) return;
    req.removeListener("close", onPollClosed);
    if (res.writableEnded) return;
    res.writeHead(200, {
      ...this.ctx.responseHeaders(req),
      "Content-Type": "text/plain; charset=UTF-8",
      "Content-Length": 1,
    });
    res.end(packet);
  }

  private refuse(
    req: IncomingMessage,
    res: ServerResponse,
    code: EngineErrorCode,
    name: string,
  ): void {
    this.ctx.onTransportRefusal(req, code, name);
    sendEngineError(res, code, this.ctx.responseHeaders(req));
  }

  private fail(reason: string, description: string): void {
    if (this.ended) return;
    this.destroy();
    this.owner.onTransportClose(this, reason, description);
  }
}

function onPollClosed(this: TaggedRequest): void {
  this[kPoll]?.pollClosed(this);
}

function pickEncoding(req: IncomingMessage): "gzip" | "deflate" | undefined {
  const accept = req.headers["accept-encoding"];
  if (typeof accept !== "string") return undefined;
  if (accepts(accept, "gzip")) return "gzip";
  if (accepts(accept, "deflate")) return "deflate";
  return undefined;
}

/** Whether Accept-Encoding lists `coding` (or `*`) without `q=0` ("gzip;q=0" means "not gzip"). */
function accepts(header: string, coding: string): boolean {
  let wildcard = false;
  for (const part of header.split(",")) {
    const [name = "", ...params] = part.split(";");
    const token = name.trim().toLowerCase();
    if (token !== coding && token !== "*") continue;
    const q = params.find((p) => p.trim().toLowerCase().startsWith("q="));
    const refused = q !== undefined && Number(q.trim().slice(2)) === 0;
    if (token === coding) return !refused;
    wildcard = !refused;
  }
  return wildcard;
}

function refuseTooLarge(
  req: IncomingMessage,
  res: ServerResponse,
  headers: OutgoingHttpHeaders,
): void {
  const body = JSON.stringify({ code: EngineErrorCode.BAD_REQUEST, message: "Payload too large" });
  res.writeHead(413, { ...headers, "Content-Type": "application/json", Connection: "close" });
  res.end(body);
  // Do not read the rest; let the socket go once the answer is out.
  req.resume();
  res.once("finish", () => req.socket.destroy());
}
