/**
 * JWT verification with jose: the key and algorithms come from configuration only, so a
 * token cannot choose them (`alg: none` and HS/RS confusion fail as TokenInvalid).
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { createLocalJWKSet, errors, type JWTPayload, jwtVerify } from "jose";
import { type ClientErrorCode, ClientErrorCode as Code } from "./codes.js";
import type { AuthConfig } from "./schema.js";

type JwtConfig = NonNullable<AuthConfig["jwt"]>;

export type VerifyResult =
  | { ok: true; claims: JWTPayload }
  | { ok: false; code: ClientErrorCode; message: string };

export type TokenVerifier = (token: string) => Promise<VerifyResult>;

const BY_KEY_TYPE: Record<string, string[]> = {
  rsa: ["RS256", "RS384", "RS512"],
  "rsa-pss": ["PS256", "PS384", "PS512"],
  ec: ["ES256", "ES384", "ES512"],
  ed25519: ["EdDSA", "Ed25519"],
  ed448: ["EdDSA"],
};

/** Builds the verifier; throws a one-line Error naming the option when a key cannot be read. */
export function createVerifier(cfg: JwtConfig): TokenVerifier {
  let key: Uint8Array | KeyObject | ReturnType<typeof createLocalJWKSet>;
  let algorithms: string[];
  if (cfg.secret !== undefined) {
    key = new TextEncoder().encode(cfg.secret);
    algorithms = cfg.algorithms ?? ["HS256", "HS384", "HS512"];
  } else if (cfg.jwksFile !== undefined) {
    let jwks: unknown;
    try {
      jwks = JSON.parse(readFileSync(cfg.jwksFile, "utf8"));
    } catch (err) {
      throw new Error(
        `auth.jwt.jwksFile: cannot read a JWKS from ${cfg.jwksFile} (${(err as Error).message})`,
      );
    }
    if (
      typeof jwks !== "object" ||
      jwks === null ||
      !Array.isArray((jwks as { keys?: unknown }).keys)
    ) {
      throw new Error(`auth.jwt.jwksFile: ${cfg.jwksFile} is not a JWKS ({ "keys": [ … ] })`);
    }
    key = createLocalJWKSet(jwks as Parameters<typeof createLocalJWKSet>[0]);
    algorithms = cfg.algorithms ?? Object.values(BY_KEY_TYPE).flat();
  } else {
    const option = cfg.publicKey !== undefined ? "auth.jwt.publicKey" : "auth.jwt.publicKeyFile";
    let pem: string;
    try {
      pem = cfg.publicKey ?? readFileSync(cfg.publicKeyFile as string, "utf8");
    } catch (err) {
      throw new Error(`${option}: cannot read ${cfg.publicKeyFile} (${(err as Error).message})`);
    }
    try {
      key = createPublicKey(pem);
    } catch (err) {
      throw new Error(`${option}: not a PEM public key (${(err as Error).message})`);
    }
    const type = key.asymmetricKeyType ?? "";
    const fitting = BY_KEY_TYPE[type];
    if (fitting === undefined) throw new Error(`${option}: unsupported key type ${type}`);
    algorithms = cfg.algorithms ?? fitting;
    const bad = algorithms.find((a) => !fitting.includes(a));
    if (bad !== undefined)
      throw new Error(`auth.jwt.algorithms: ${bad} does not fit the ${type} key`);
  }
  const options = {
    algorithms,
    audience: cfg.audience,
    issuer: cfg.issuer,
    clockTolerance: cfg.clockToleranceSec,
    requiredClaims: cfg.requireExp ? ["exp"] : [],
  };
  return async (token) => {
    if (Buffer.byteLength(token) > cfg.maxTokenBytes) {
      return {
        ok: false,
        code: Code.TokenTooLarge,
        message: `token over ${cfg.maxTokenBytes} bytes`,
      };
    }
    try {
      // One call site per key kind keeps jose's overloads happy under strict typing.
      const { payload } =
        typeof key === "function"
          ? await jwtVerify(token, key, options)
          : await jwtVerify(token, key, options);
      return { ok: true, claims: payload };
    } catch (err) {
      return classify(err);
    }
  };
}

function classify(err: unknown): VerifyResult {
  if (err instanceof errors.JWTExpired)
    return { ok: false, code: Code.TokenExpired, message: "token expired" };
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === "nbf")
      return { ok: false, code: Code.TokenNotYetValid, message: "token not yet valid" };
    if (err.claim === "exp")
      return { ok: false, code: Code.TokenClaimMismatch, message: "token has no exp" };
    return { ok: false, code: Code.TokenClaimMismatch, message: `claim ${err.claim} check failed` };
  }
  if (err instanceof errors.JOSEAlgNotAllowed)
    return { ok: false, code: Code.TokenInvalid, message: "algorithm not allowed" };
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return { ok: false, code: Code.TokenInvalid, message: "signature verification failed" };
  }
  if (err instanceof errors.JWKSNoMatchingKey)
    return { ok: false, code: Code.TokenInvalid, message: "no matching key" };
  return { ok: false, code: Code.TokenInvalid, message: "malformed token" };
}

/** The token from `auth.token`, else the configured header (`Bearer x` or `x`). */
export function extractToken(
  auth: Record<string, unknown>,
  headers: Record<string, unknown>,
  header: string,
): string | undefined {
  const t = auth.token;
  if (typeof t === "string" && t !== "") return t;
  const h = headers[header.toLowerCase()];
  if (typeof h !== "string" || h === "") return undefined;
  return /^bearer\s+/i.test(h) ? h.replace(/^bearer\s+/i, "") : h;
}
