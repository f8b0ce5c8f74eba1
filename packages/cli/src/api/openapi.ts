/**
 * The API's routes, and the OpenAPI 3.1 document generated from them and from the zod
 * schemas in `schemas.ts` (the single source: what is validated is what is documented).
 */
import { type ZodType, z } from "zod";
import type { ApiScope } from "./config.js";
import {
  batchRequest,
  disconnectRequest,
  errorResponse,
  joinRequest,
  leaveRequest,
  okResponse,
  presenceResponse,
  publishRequest,
  publishResponse,
  roomsResponse,
  socketsResponse,
} from "./schemas.js";

/** Path prefix of every route. */
export const API_PREFIX = "/api/v1";

/** A query parameter of a GET route. */
export interface QueryParam {
  name: string;
  required: boolean;
  repeated: boolean;
  description: string;
}

/** One route of the API. */
export interface ApiRoute {
  readonly operationId: string;
  readonly method: "GET" | "POST";
  /** Path below {@link API_PREFIX}. */
  readonly path: string;
  /** Scope the key needs; undefined: no key needed. */
  readonly scope: ApiScope | undefined;
  readonly summary: string;
  readonly body?: ZodType;
  readonly query?: readonly QueryParam[];
  readonly response: ZodType;
}

const namespaceParam: QueryParam = {
  name: "namespace",
  required: false,
  repeated: false,
  description: 'Namespace name (default "/").',
};

/** Every route, in documentation order. */
export const API_ROUTES: readonly ApiRoute[] = [
  {
    operationId: "publish",
    method: "POST",
    path: "/publish",
    scope: "publish",
    summary: "Emit an event to a namespace, rooms or socket ids (cluster-wide).",
    body: publishRequest,
    response: publishResponse,
  },
  {
    operationId: "publishBatch",
    method: "POST",
    path: "/publish/batch",
    scope: "publish",
    summary: "Several publishes in one request, delivered in order.",
    body: batchRequest,
    response: z.strictObject({ results: z.array(publishResponse) }),
  },
  {
    operationId: "join",
    method: "POST",
    path: "/join",
    scope: "manage",
    summary: "Make sockets (by id or room) join rooms, cluster-wide.",
    body: joinRequest,
    response: okResponse,
  },
  {
    operationId: "leave",
    method: "POST",
    path: "/leave",
    scope: "manage",
    summary: "Make sockets (by id or room) leave rooms, cluster-wide.",
    body: leaveRequest,
    response: okResponse,
  },
  {
    operationId: "disconnect",
    method: "POST",
    path: "/disconnect",
    scope: "manage",
    summary: "Disconnect sockets (by id or room), cluster-wide.",
    body: disconnectRequest,
    response: okResponse,
  },
  {
    operationId: "listRooms",
    method: "GET",
    path: "/rooms",
    scope: "read",
    summary: "Rooms of a namespace across the cluster, with their sizes.",
    query: [namespaceParam],
    response: roomsResponse,
  },
  {
    operationId: "listSockets",
    method: "GET",
    path: "/sockets",
    scope: "read",
    summary: "Sockets of a namespace (or of one room) across the cluster, with their data.",
    query: [
      namespaceParam,
      { name: "room", required: false, repeated: false, description: "Only sockets in this room." },
    ],
    response: socketsResponse,
  },
  {
    operationId: "presence",
    method: "GET",
    path: "/presence",
    scope: "read",
    summary: "How many sockets are in each room, across the cluster.",
    query: [
      namespaceParam,
      {
        name: "room",
        required: true,
        repeated: true,
        description: "A room (repeat for several, at most 100).",
      },
    ],
    response: presenceResponse,
  },
  {
    operationId: "openapi",
    method: "GET",
    path: "/openapi.json",
    scope: undefined,
    summary: "This document.",
    response: z.looseObject({ openapi: z.string() }),
  },
];

function jsonSchema(schema: ZodType, io: "input" | "output"): Record<string, unknown> {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, {
    io,
    unrepresentable: "any",
  }) as Record<string, unknown>;
  return rest;
}

const ERROR_STATUSES: Record<string, string> = {
  "400": "Invalid JSON, body, or query (error.path names the field).",
  "401": "Missing or unknown API key.",
  "403": "The key lacks the scope this route needs.",
  "404": "Unknown route or namespace.",
  "405": "Method not allowed on this route.",
  "413": "Body larger than api.bodyLimit.",
  "415": "Body is not application/json.",
  "429": "Too many failed key checks from this address.",
  "504": "A node of the cluster did not answer in time.",
};

/** The OpenAPI 3.1 document of the API. */
export function openApiDocument(version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const errorRef = { $ref: "#/components/schemas/Error" };
  for (const r of API_ROUTES) {
    const responses: Record<string, unknown> = {
      "200": {
        description: "OK",
        content: { "application/json": { schema: jsonSchema(r.response, "output") } },
      },
    };
    for (const [status, description] of Object.entries(ERROR_STATUSES)) {
      if (r.scope === undefined && status !== "404" && status !== "405") continue;
      responses[status] = { description, content: { "application/json": { schema: errorRef } } };
    }
    const op: Record<string, unknown> = {
      operationId: r.operationId,
      summary: r.summary,
      responses,
    };
    if (r.scope !== undefined) {
      op.security = [{ bearer: [] }, { apiKey: [] }];
      op["x-scope"] = r.scope;
      op.description = `Needs an API key with the \`${r.scope}\` scope.`;
    } else {
      op.security = [];
    }
    if (r.body !== undefined) {
      op.requestBody = {
        required: true,
        content: { "application/json": { schema: jsonSchema(r.body, "input") } },
      };
    }
    if (r.operationId === "publish") {
      op.parameters = [
        {
          name: "Idempotency-Key",
          in: "header",
          required: false,
          description: "Same as the body's idempotencyKey (the body wins when both are given).",
          schema: { type: "string", minLength: 1, maxLength: 256 },
        },
      ];
    }
    if (r.query !== undefined) {
      op.parameters = r.query.map((q) => ({
        name: q.name,
        in: "query",
        required: q.required,
        description: q.description,
        schema: q.repeated
          ? {
              type: "array",
              items: { type: "string", minLength: 1, maxLength: 256 },
              maxItems: 100,
            }
          : { type: "string", minLength: 1, maxLength: 256 },
        ...(q.repeated ? { style: "form", explode: true } : {}),
      }));
    }
    const path = API_PREFIX + r.path;
    paths[path] ??= {};
    (paths[path] as Record<string, unknown>)[r.method.toLowerCase()] = op;
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Switchyard server API",
      version,
      description:
        "Publish to Socket.IO clients, manage their rooms and read presence, cluster-wide. " +
        "Errors are JSON: { error: { code, message, path? } }.",
    },
    paths,
    components: {
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "Authorization: Bearer <API key>" },
        apiKey: { type: "apiKey", in: "header", name: "x-api-key" },
      },
      schemas: { Error: jsonSchema(errorResponse, "output") },
    },
  };
}
