/** The API's error answers: an HTTP status, a stable code and a message naming the problem. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly path: string | undefined;
  constructor(status: number, code: string, message: string, path?: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.path = path;
  }
}

/** Stable error codes of the API (documented in the OpenAPI document and docs/errors.md style). */
export const ApiErrorCode = {
  UNAUTHORIZED: "SY_API_UNAUTHORIZED",
  FORBIDDEN: "SY_API_FORBIDDEN",
  TOO_MANY_BAD_KEYS: "SY_API_TOO_MANY_BAD_KEYS",
  NOT_FOUND: "SY_API_NOT_FOUND",
  METHOD_NOT_ALLOWED: "SY_API_METHOD_NOT_ALLOWED",
  UNSUPPORTED_MEDIA_TYPE: "SY_API_UNSUPPORTED_MEDIA_TYPE",
  BODY_TOO_LARGE: "SY_API_BODY_TOO_LARGE",
  INVALID_JSON: "SY_API_INVALID_JSON",
  INVALID_BODY: "SY_API_INVALID_BODY",
  INVALID_QUERY: "SY_API_INVALID_QUERY",
  NAMESPACE_UNKNOWN: "SY_API_NAMESPACE_UNKNOWN",
  CLUSTER_TIMEOUT: "SY_API_CLUSTER_TIMEOUT",
  INTERNAL: "SY_API_INTERNAL",
} as const;
