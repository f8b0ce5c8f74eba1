/**
 * Who else serves a namespace: uid → when we last heard from it. A node counts as
 * alive until `heartbeatTimeout` passes without any message from it; liveness is
 * computed at call time, so counts drop exactly at the deadline, not at the next sweep.
 */
export class Membership {
  private readonly lastSeen = new Map<string, number>();
  private readonly timeout: number;

  constructor(heartbeatTimeout: number) {
    this.timeout = heartbeatTimeout;
  }

  /**
   * Records a sign of life. Only `hello`/`heartbeat` (`announce`) admit a new node:
   * anything else from an unknown uid (an emitter's request) is not a member.
   * Returns true if the node is new.
   */
  seen(uid: string, announce: boolean): boolean {
    const known = this.lastSeen.has(uid);
    if (!known && !announce) return false;
    this.lastSeen.set(uid, Date.now());
    return !known;
  }

  /** Removes a node; returns whether it was a member. */
  forget(uid: string): boolean {
    return this.lastSeen.delete(uid);
  }

  /** Members heard from within the timeout. */
  live(): Set<string> {
    const out = new Set<string>();
    const deadline = Date.now() - this.timeout;
    for (const [uid, seen] of this.lastSeen) if (seen >= deadline) out.add(uid);
    return out;
  }

  /** Members past the timeout (still listed until forgotten). */
  expired(): string[] {
    const out: string[] = [];
    const deadline = Date.now() - this.timeout;
    for (const [uid, seen] of this.lastSeen) if (seen < deadline) out.push(uid);
    return out;
  }

  clear(): void {
    this.lastSeen.clear();
  }
}
