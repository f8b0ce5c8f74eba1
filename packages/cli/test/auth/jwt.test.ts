/**
 * JWT connect auth with real socket.io-client sockets: accepted tokens put their claims in
 * socket.data; hostile tokens (alg none, HS/RS confusion, expired, not yet valid, wrong
 * aud/iss, oversized, bad signature) are refused with a stable connect_error data.code;
 * a token that expires disconnects its socket with a notice.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { writeFileSync } from "node:fs";
import { afterEach, beforeEach, describe, test } from "node:test";
import { makeTempDir } from "@switchyard/test-harness";
import { exportJWK, SignJWT } from "jose";
import type { Socket as ClientSocket } from "socket.io-client";
import { installAuth, REFRESH_EVENT } from "../../src/auth/auth.js";
import { ClientErrorCode, DISCONNECT_NOTICE_EVENT } from "../../src/auth/codes.js";
import { authSchema } from "../../src/auth/schema.js";
import { client, connected, next, refusedCode, startContext, type TestContext } from "./context.js";

const SECRET = "a-test-secret-of-32-characters!!";
const key = new TextEncoder().encode(SECRET);
const now = () => Math.floor(Date.now() / 1000);

function hs(claims: Record<string, unknown>, alg = "HS256"): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg }).sign(key);
}

function b64(o: unknown): string {
  return Buffer.from(JSON.stringify(o)).toString("base64url");
}

let t: TestContext;
let opened: ClientSocket[];
let handles: { close(): void }[];

beforeEach(async () => {
  t = await startContext();
  opened = [];
  handles = [];
});
afterEach(async () => {
  for (const s of opened) s.close();
  for (const h of handles) h.close();
  await t.close();
});

async function install(raw: unknown) {
  const h = await installAuth(t.ctx, authSchema.parse(raw));
  handles.push(h);
  return h;
}

describe("JWT with a shared secret (HS*)", () => {
  test("a valid token connects and its claims land in socket.data", async () => {
    const h = await install({ jwt: { secret: SECRET, audience: "app", issuer: "backend" } });
    const seen = new Promise<unknown>((resolve) =>
      t.ctx.io.on("connection", (s) => resolve(s.data)),
    );
    const token = await hs(
      { sub: "u1", aud: "app", iss: "backend", exp: now() + 60, name: "Ada" },
      "HS384",
    );
    await connected(client(t.url, opened, { auth: { token } }));
    const data = (await seen) as Record<string, unknown>;
    assert.equal(data.sub, "u1");
    assert.equal(data.name, "Ada");
    assert.equal(h.stats.accepted, 1);
  });

  test("the token may come in the Authorization header instead", async () => {
    await install({ jwt: { secret: SECRET } });
    const token = await hs({ sub: "h" });
    await connected(client(t.url, opened, { extraHeaders: { authorization: `Bearer ${token}` } }));
  });

  test("hostile tokens are refused with stable codes, counted, logged once per code", async () => {
    const h = await install({
      jwt: { secret: SECRET, audience: "app", issuer: "backend", clockToleranceSec: 0 },
    });
    const good = { aud: "app", iss: "backend" };
    const cases: [string, Record<string, unknown>, string][] = [
      ["missing", {}, ClientErrorCode.TokenMissing],
      [
        "alg none",
        { token: `${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: "x", ...good })}.` },
        ClientErrorCode.TokenInvalid,
      ],
      ["garbage", { token: "not.a.jwt" }, ClientErrorCode.TokenInvalid],
      [
        "bad signature",
        {
          token: await new SignJWT(good)
            .setProtectedHeader({ alg: "HS256" })
            .sign(new TextEncoder().encode("another-secret-of-32-characters!")),
        },
        ClientErrorCode.TokenInvalid,
      ],
      ["expired", { token: await hs({ ...good, exp: now() - 60 }) }, ClientErrorCode.TokenExpired],
      [
        "not yet valid",
        { token: await hs({ ...good, nbf: now() + 600 }) },
        ClientErrorCode.TokenNotYetValid,
      ],
      [
        "wrong aud",
        { token: await hs({ ...good, aud: "other" }) },
        ClientErrorCode.TokenClaimMismatch,
      ],
      [
        "wrong iss",
        { token: await hs({ ...good, iss: "evil" }) },
        ClientErrorCode.TokenClaimMismatch,
      ],
      [
        "oversized",
        { token: await hs({ ...good, pad: "x".repeat(9000) }) },
        ClientErrorCode.TokenTooLarge,
      ],
      ["not a string", { token: 42 }, ClientErrorCode.TokenMissing],
    ];
    for (const [what, auth, code] of cases) {
      assert.equal(await refusedCode(client(t.url, opened, { auth })), code, what);
    }
    assert.equal(h.stats.accepted, 0);
    assert.equal(h.stats.refusals[ClientErrorCode.TokenInvalid], 3);
    assert.equal(h.stats.refusals[ClientErrorCode.TokenClaimMismatch], 2);
    // Logged once per code (the limiter is asked per refusal, answers true once per key).
    assert.equal(t.limited.filter((k) => k === `auth:${ClientErrorCode.TokenInvalid}`).length, 3);
    await connected(client(t.url, opened, { auth: { token: await hs(good) } }));
  });

  test("a token that expires disconnects its socket with the documented notice", async () => {
    const h = await install({ jwt: { secret: SECRET, clockToleranceSec: 0 } });
    const s = client(t.url, opened, { auth: { token: await hs({ sub: "e", exp: now() + 2 }) } });
    const notice = next<[{ code: string }]>(s, DISCONNECT_NOTICE_EVENT, 5000);
    const gone = next<[string]>(s, "disconnect", 5000);
    await connected(s);
    assert.equal((await notice)[0].code, ClientErrorCode.TokenExpired);
    assert.equal((await gone)[0], "io server disconnect");
    assert.equal(h.stats.expired, 1);
  });
});

describe("every namespace is guarded", () => {
  test("declared before the install (from config), created later, and children of a pattern", async () => {
    t.ctx.io.of("/declared");
    t.ctx.config.namespaces = { names: ["/", "/declared"] };
    t.ctx.io.of(/^\/dyn-\w+$/);
    await install({ jwt: { secret: SECRET } });
    t.ctx.io.of("/later");
    const token = await hs({ sub: "n" });
    for (const nsp of ["/", "/declared", "/later", "/dyn-a"]) {
      assert.equal(
        await refusedCode(client(t.url, opened, {}, nsp)),
        ClientErrorCode.TokenMissing,
        nsp,
      );
      await connected(client(t.url, opened, { auth: { token } }, nsp));
    }
  });
});

test("after close() (shutdown) auth refuses every connection, even with a valid token", async () => {
  const h = await install({ jwt: { secret: SECRET } });
  const token = await hs({ sub: "c" });
  await connected(client(t.url, opened, { auth: { token } }));
  h.close();
  assert.equal(
    await refusedCode(client(t.url, opened, { auth: { token } })),
    ClientErrorCode.BackendUnavailable,
  );
});

describe("token refresh", () => {
  test("switchyard:refresh extends the session; another sub or a bad token is an ack error", async () => {
    const h = await install({ jwt: { secret: SECRET, clockToleranceSec: 0 } });
    let server: { data: Record<string, unknown> } | undefined;
    t.ctx.io.on("connection", (sk) => {
      server = sk;
    });
    const s = client(t.url, opened, {
      auth: { token: await hs({ sub: "r", exp: now() + 2, v: 1 }) },
    });
    let noticed = false;
    s.on(DISCONNECT_NOTICE_EVENT, () => {
      noticed = true;
    });
    await connected(s);
    type Answer = { ok?: true; error?: { code: string } };
    const other = (await s
      .timeout(3000)
      .emitWithAck(REFRESH_EVENT, await hs({ sub: "x", exp: now() + 60 }))) as Answer;
    assert.equal(other.error?.code, ClientErrorCode.TokenClaimMismatch);
    const expired = (await s
      .timeout(3000)
      .emitWithAck(REFRESH_EVENT, await hs({ sub: "r", exp: now() - 5 }))) as Answer;
    assert.equal(expired.error?.code, ClientErrorCode.TokenExpired);
    const fresh = (await s
      .timeout(3000)
      .emitWithAck(REFRESH_EVENT, await hs({ sub: "r", exp: now() + 60, v: 2 }))) as Answer;
    assert.equal(fresh.ok, true);
    assert.equal(server?.data.v, 2);
    // Past the first token's exp (2 s, whole seconds): still connected, no notice.
    const gone = next(s, "disconnect", 3500).then(
      () => true,
      () => false,
    );
    assert.equal(await gone, false);
    assert.equal(s.connected, true);
    assert.equal(noticed, false);
    assert.equal(h.stats.expired, 0);
  });
});

describe("JWT with public keys", () => {
  test("RS256 public key: valid accepted; HS256 signed with the PEM as secret (key confusion) refused", async () => {
    const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const pem = publicKey.export({ type: "spki", format: "pem" }).toString();
    await install({ jwt: { publicKey: pem } });
    const good = await new SignJWT({ sub: "r" })
      .setProtectedHeader({ alg: "RS256" })
      .sign(privateKey);
    await connected(client(t.url, opened, { auth: { token: good } }));
    const confused = await new SignJWT({ sub: "evil" })
      .setProtectedHeader({ alg: "HS256" })
      .sign(new TextEncoder().encode(pem));
    assert.equal(
      await refusedCode(client(t.url, opened, { auth: { token: confused } })),
      ClientErrorCode.TokenInvalid,
    );
    const none = `${b64({ alg: "none" })}.${b64({ sub: "evil" })}.`;
    assert.equal(
      await refusedCode(client(t.url, opened, { auth: { token: none } })),
      ClientErrorCode.TokenInvalid,
    );
  });

  test("EdDSA public key from a file", async () => {
    const dir = makeTempDir("sy-cli-jwt");
    try {
      const ed = generateKeyPairSync("ed25519");
      const file = `${dir.path}/ed.pem`;
      writeFileSync(file, ed.publicKey.export({ type: "spki", format: "pem" }));
      await install({ jwt: { publicKeyFile: file } });
      const token = await new SignJWT({ sub: "ed" })
        .setProtectedHeader({ alg: "EdDSA" })
        .sign(ed.privateKey);
      await connected(client(t.url, opened, { auth: { token } }));
      const other = generateKeyPairSync("ed25519");
      const forged = await new SignJWT({ sub: "ed" })
        .setProtectedHeader({ alg: "EdDSA" })
        .sign(other.privateKey);
      assert.equal(
        await refusedCode(client(t.url, opened, { auth: { token: forged } })),
        ClientErrorCode.TokenInvalid,
      );
    } finally {
      dir.remove();
    }
  });

  test("ES256 from a JWKS file (key chosen by kid; unknown kid refused)", async () => {
    const dir = makeTempDir("sy-cli-jwks");
    try {
      const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
      const jwk = { ...(await exportJWK(ec.publicKey)), kid: "k1", alg: "ES256" };
      const file = `${dir.path}/jwks.json`;
      writeFileSync(file, JSON.stringify({ keys: [jwk] }));
      await install({ jwt: { jwksFile: file } });
      const token = await new SignJWT({ sub: "ec" })
        .setProtectedHeader({ alg: "ES256", kid: "k1" })
        .sign(ec.privateKey);
      await connected(client(t.url, opened, { auth: { token } }));
      const unknown = await new SignJWT({ sub: "ec" })
        .setProtectedHeader({ alg: "ES256", kid: "k2" })
        .sign(ec.privateKey);
      assert.equal(
        await refusedCode(client(t.url, opened, { auth: { token: unknown } })),
        ClientErrorCode.TokenInvalid,
      );
    } finally {
      dir.remove();
    }
  });

  test("configuration mistakes fail with one line naming the key", async () => {
    assert.throws(
      () => authSchema.parse({ jwt: { secret: SECRET, publicKey: "x" } }),
      /exactly one of/,
    );
    assert.throws(
      () => authSchema.parse({ jwt: { secret: SECRET, algorithms: ["RS256"] } }),
      /RS256 does not match/,
    );
    assert.throws(() => authSchema.parse({ jwt: { secret: SECRET, algorithms: ["none"] } }));
    assert.throws(() => authSchema.parse({ jwt: { secret: SECRET, secrt: 1 } }), /secrt/);
    await assert.rejects(
      install({ jwt: { publicKey: "not a pem" } }),
      /^Error: auth\.jwt\.publicKey: not a PEM public key/,
    );
    await assert.rejects(
      install({ jwt: { jwksFile: "/nonexistent/jwks.json" } }),
      /auth\.jwt\.jwksFile: cannot read/,
    );
  });
});
