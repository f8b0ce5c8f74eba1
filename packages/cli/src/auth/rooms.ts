/**
 * Rooms a client may join by itself: it emits `switchyard:join` (room, ack) or
 * `switchyard:leave` (room, ack); the ack gets `{ ok: true, room }` or
 * `{ error: { code, message } }` (never a silent success).
 */
import type { Socket } from "@switchyard/server";
import { ackError, ClientErrorCode as Code } from "./codes.js";
import type { AuthConfig } from "./schema.js";
import type { WebhookClient } from "./webhook-client.js";

export const JOIN_EVENT = "switchyard:join";
export const LEAVE_EVENT = "switchyard:leave";
const MAX_ROOM_LENGTH = 256;

type RoomsConfig = AuthConfig["rooms"];
export type Ack = (answer: unknown) => void;

/** `*` matches any run of characters; everything else is literal. */
export function roomPattern(pattern: string): RegExp {
  const parts = pattern.split("*").map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${parts.join(".*")}$`, "s");
}

/** Fills `{name}` placeholders from claims; undefined when a claim is missing or not a string/number. */
export function fillPattern(pattern: string, claims: Record<string, unknown>): string | undefined {
  let missing = false;
  const out = pattern.replace(/\{([^{}]+)\}/g, (_m, name: string) => {
    const v = claims[name];
    if (typeof v === "string" || typeof v === "number") return String(v).replaceAll("*", "");
    missing = true;
    return "";
  });
  return missing ? undefined : out;
}

/** Whether the claims allow `room` (mode `claims`). */
export function claimsAllow(
  cfg: RoomsConfig,
  claims: Record<string, unknown>,
  room: string,
): boolean {
  const listed = claims[cfg.claim];
  const patterns: string[] = [];
  if (Array.isArray(listed)) {
    for (const p of listed) if (typeof p === "string") patterns.push(p);
  } else if (typeof listed === "string") {
    patterns.push(listed);
  }
  for (const a of cfg.allow) {
    const filled = fillPattern(a, claims);
    if (filled !== undefined) patterns.push(filled);
  }
  return patterns.some((p) => roomPattern(p).test(room));
}

export interface RoomDeps {
  cfg: RoomsConfig;
  claimsOf(socket: Socket): Record<string, unknown>;
  webhook: WebhookClient | undefined;
  refused(code: string, detail: string): void;
}

/** Handles a join request; the answer goes to `ack` (when the client asked for one). */
export async function handleJoin(
  deps: RoomDeps,
  socket: Socket,
  room: unknown,
  ack: Ack | undefined,
): Promise<void> {
  const reply = ack ?? (() => {});
  if (typeof room !== "string" || room === "" || room.length > MAX_ROOM_LENGTH) {
    deps.refused(Code.RoomInvalid, "bad room name");
    reply(
      ackError(
        Code.RoomInvalid,
        `room must be a non-empty string of at most ${MAX_ROOM_LENGTH} characters`,
      ),
    );
    return;
  }
  if (socket.rooms.has(room)) {
    reply({ ok: true, room });
    return;
  }
  if (socket.rooms.size - 1 >= deps.cfg.maxRoomsPerSocket) {
    deps.refused(Code.RoomForbidden, "too many rooms");
    reply(ackError(Code.RoomForbidden, `at most ${deps.cfg.maxRoomsPerSocket} rooms per socket`));
    return;
  }
  let allowed = false;
  if (deps.cfg.mode === "claims") allowed = claimsAllow(deps.cfg, deps.claimsOf(socket), room);
  else if (deps.cfg.mode === "webhook" && deps.webhook !== undefined) {
    const res = await deps.webhook.post(
      {
        action: "join",
        room,
        socket: { id: socket.id, nsp: socket.nsp.name, data: socket.data ?? null },
      },
      socket.id,
    );
    if (!res.ok) {
      const code =
        res.reason === "timeout"
          ? Code.BackendTimeout
          : res.reason === "busy"
            ? Code.BackendBusy
            : Code.BackendUnavailable;
      deps.refused(code, res.detail);
      reply(ackError(code, `subscribe webhook: ${res.detail}`));
      return;
    }
    allowed =
      typeof res.body === "object" &&
      res.body !== null &&
      (res.body as { allow?: unknown }).allow === true;
  }
  if (!allowed) {
    deps.refused(Code.RoomForbidden, "room refused");
    reply(ackError(Code.RoomForbidden, `not allowed to join ${JSON.stringify(room)}`));
    return;
  }
  if (socket.disconnected) return;
  await socket.join(room);
  reply({ ok: true, room });
}

/** Leaves a room the socket is in (never its own id room). */
export async function handleLeave(
  socket: Socket,
  room: unknown,
  ack: Ack | undefined,
): Promise<void> {
  const reply = ack ?? (() => {});
  if (typeof room !== "string" || room === socket.id || !socket.rooms.has(room)) {
    reply(ackError(Code.RoomInvalid, "not in that room"));
    return;
  }
  await socket.leave(room);
  reply({ ok: true, room });
}
