/**
 * Optional validation of incoming events with any Standard Schema validator (zod,
 * valibot, arktype, …). The interface below is the Standard Schema v1 contract, which
 * its authors publish for libraries to embed instead of depending on a package.
 */

/** The Standard Schema v1 interface (subset we use). */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly "~standard": {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (
      value: unknown,
    ) => StandardSchemaV1.Result<Output> | Promise<StandardSchemaV1.Result<Output>>;
    readonly types?: { readonly input: Input; readonly output: Output } | undefined;
  };
}

export declare namespace StandardSchemaV1 {
  type Result<Output> = SuccessResult<Output> | FailureResult;
  interface SuccessResult<Output> {
    readonly value: Output;
    readonly issues?: undefined;
  }
  interface FailureResult {
    readonly issues: ReadonlyArray<Issue>;
  }
  interface Issue {
    readonly message: string;
    readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined;
  }
}

/** What a client receives when its payload fails validation (in its ack, or as a `switchyard:error` event). */
export interface ValidationErrorPayload {
  error: {
    code: "SY_ERR_VALIDATION_FAILED";
    event: string;
    message: string;
    issues: { message: string; path?: (string | number)[] }[];
  };
}

/** The event the server emits to a client whose un-acked event failed validation. */
export const VALIDATION_ERROR_EVENT = "switchyard:error";

/**
 * Validates `args` (the event's arguments, ack excluded). Calls back with the parsed
 * arguments or the error payload; synchronous when the schema is.
 */
export function validateArgs(
  schema: StandardSchemaV1,
  event: string,
  args: unknown[],
  done: (
    result: { ok: true; args: unknown[] } | { ok: false; error: ValidationErrorPayload },
  ) => void,
): void {
  let result: StandardSchemaV1.Result<unknown> | Promise<StandardSchemaV1.Result<unknown>>;
  try {
    result = schema["~standard"].validate(args);
  } catch (err) {
    done({
      ok: false,
      error: failure(event, [{ message: (err as Error).message ?? "validator threw" }]),
    });
    return;
  }
  if (result instanceof Promise) {
    result.then(
      (r) => finish(r, event, done),
      (err: unknown) => done({ ok: false, error: failure(event, [{ message: String(err) }]) }),
    );
    return;
  }
  finish(result, event, done);
}

function finish(
  r: StandardSchemaV1.Result<unknown>,
  event: string,
  done: (
    result: { ok: true; args: unknown[] } | { ok: false; error: ValidationErrorPayload },
  ) => void,
): void {
  if (r.issues !== undefined) {
    done({ ok: false, error: failure(event, r.issues) });
    return;
  }
  const value = r.value;
  done({ ok: true, args: Array.isArray(value) ? value : [value] });
}

function failure(
  event: string,
  issues: ReadonlyArray<StandardSchemaV1.Issue>,
): ValidationErrorPayload {
  return {
    error: {
      code: "SY_ERR_VALIDATION_FAILED",
      event,
      message: `invalid arguments for "${event}": ${issues.map((i) => i.message).join("; ")}`,
      issues: issues.map((i) => {
        const path = i.path?.map((p) => {
          const key = typeof p === "object" ? p.key : p;
          return typeof key === "number" ? key : String(key);
        });
        return path === undefined ? { message: i.message } : { message: i.message, path };
      }),
    },
  };
}
