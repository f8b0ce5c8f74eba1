// A small JSON Schema (2020-12) validator for the subset the API's OpenAPI document uses:
// type, properties, required, additionalProperties, items, enum, const, anyOf, $ref to
// #/components/…, minLength/maxLength, pattern, minimum/maximum, minItems/maxItems,
// propertyNames. Any keyword outside the subset fails loudly, so the test cannot pass by
// ignoring what it does not understand.

const KNOWN = new Set([
  "type",
  "properties",
  "required",
  "additionalProperties",
  "items",
  "enum",
  "const",
  "anyOf",
  "$ref",
  "minLength",
  "maxLength",
  "pattern",
  "minimum",
  "maximum",
  "minItems",
  "maxItems",
  "propertyNames",
  "description",
  "default",
]);

type Schema = Record<string, unknown>;

function typeOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

function typeMatches(want: string, v: unknown): boolean {
  const got = typeOf(v);
  return want === got || (want === "number" && got === "integer");
}

/** Errors of `value` against `schema` ("" path = root); empty when valid. */
export function validate(schema: Schema, value: unknown, root: Schema, path = ""): string[] {
  const errors: string[] = [];
  for (const k of Object.keys(schema)) {
    if (!KNOWN.has(k))
      throw new Error(
        `json-schema: keyword ${k} at ${path || "/"} not supported by the test validator`,
      );
  }
  const at = path || "/";
  if (typeof schema.$ref === "string") {
    const ref = schema.$ref;
    if (!ref.startsWith("#/")) throw new Error(`json-schema: $ref ${ref} not supported`);
    let target: unknown = root;
    for (const part of ref.slice(2).split("/")) target = (target as Record<string, unknown>)[part];
    if (target === undefined) return [`${at}: unresolved $ref ${ref}`];
    errors.push(...validate(target as Schema, value, root, path));
  }
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
    if (!types.some((t) => typeMatches(t, value))) {
      return [...errors, `${at}: expected ${types.join("|")}, got ${typeOf(value)}`];
    }
  }
  if (schema.const !== undefined && JSON.stringify(schema.const) !== JSON.stringify(value)) {
    errors.push(`${at}: expected const ${JSON.stringify(schema.const)}`);
  }
  if (
    Array.isArray(schema.enum) &&
    !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))
  ) {
    errors.push(`${at}: not in enum`);
  }
  if (Array.isArray(schema.anyOf)) {
    const ok = (schema.anyOf as Schema[]).some((s) => validate(s, value, root, path).length === 0);
    if (!ok) errors.push(`${at}: matches no anyOf branch`);
  }
  if (typeof value === "string") {
    if (typeof schema.minLength === "number" && value.length < schema.minLength)
      errors.push(`${at}: too short`);
    if (typeof schema.maxLength === "number" && value.length > schema.maxLength)
      errors.push(`${at}: too long`);
    if (typeof schema.pattern === "string" && !new RegExp(schema.pattern, "u").test(value)) {
      errors.push(`${at}: does not match ${schema.pattern}`);
    }
  }
  if (typeof value === "number") {
    if (typeof schema.minimum === "number" && value < schema.minimum)
      errors.push(`${at}: below minimum`);
    if (typeof schema.maximum === "number" && value > schema.maximum)
      errors.push(`${at}: above maximum`);
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === "number" && value.length < schema.minItems)
      errors.push(`${at}: too few items`);
    if (typeof schema.maxItems === "number" && value.length > schema.maxItems)
      errors.push(`${at}: too many items`);
    if (schema.items !== undefined) {
      value.forEach((item, i) => {
        errors.push(...validate(schema.items as Schema, item, root, `${path}/${i}`));
      });
    }
  }
  if (typeOf(value) === "object") {
    const obj = value as Record<string, unknown>;
    const props = (schema.properties ?? {}) as Record<string, Schema>;
    for (const r of (schema.required ?? []) as string[]) {
      if (!Object.hasOwn(obj, r)) errors.push(`${at}: missing required ${r}`);
    }
    for (const [k, v] of Object.entries(obj)) {
      if (schema.propertyNames !== undefined) {
        errors.push(...validate(schema.propertyNames as Schema, k, root, `${path}/${k}`));
      }
      const p = props[k];
      if (p !== undefined) errors.push(...validate(p, v, root, `${path}/${k}`));
      else if (schema.additionalProperties === false)
        errors.push(`${at}: unexpected property ${k}`);
      else if (
        typeof schema.additionalProperties === "object" &&
        schema.additionalProperties !== null
      ) {
        errors.push(...validate(schema.additionalProperties as Schema, v, root, `${path}/${k}`));
      }
    }
  }
  return errors;
}

/**
 * Checks one answer against the OpenAPI document: the path, method and status must be
 * documented, and the JSON body must validate against the documented schema.
 */
export function checkResponse(
  doc: Schema,
  method: string,
  path: string,
  status: number,
  body: unknown,
): void {
  const paths = doc.paths as Record<string, Record<string, Schema>>;
  const op = paths[path]?.[method.toLowerCase()];
  if (op === undefined) throw new Error(`OpenAPI: ${method} ${path} is not documented`);
  const responses = op.responses as Record<string, Schema>;
  const r = responses[String(status)];
  if (r === undefined)
    throw new Error(`OpenAPI: ${method} ${path} does not document status ${status}`);
  const content = r.content as Record<string, { schema: Schema }>;
  const schema = content["application/json"]?.schema;
  if (schema === undefined)
    throw new Error(`OpenAPI: ${method} ${path} ${status} has no JSON schema`);
  const errors = validate(schema, body, doc);
  if (errors.length > 0) {
    throw new Error(
      `OpenAPI: ${method} ${path} ${status} body does not match: ${errors.join("; ")}\n${JSON.stringify(body)}`,
    );
  }
}
