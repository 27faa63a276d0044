// Small, pure helpers to validate a decoded JSON document (cjson tables) field by field.
// Every problem is collected as "<json path>: <what was expected>, got <what was there>", so
// a user sees all mistakes of a file at once, each naming the exact place.

/** A decoded JSON value as cjson gives it: tables for objects and arrays. */
export type Json = unknown;
export type JsonObject = LuaTable<string, Json>;

export class Problems {
  list: string[] = [];
  add(path: string, message: string): void {
    this.list.push(`${path}: ${message}`);
  }
}

/** cjson decodes JSON null to a light userdata sentinel. */
function isNull(v: Json): boolean {
  return type(v) === "userdata";
}

/** True when the table's keys are exactly 1..n (a JSON array; `[]` and `{}` both qualify). */
export function isArray(v: Json): v is Json[] {
  if (type(v) !== "table") return false;
  let count = 0;
  for (const [k] of pairs(v as LuaTable)) {
    if (type(k) !== "number") return false;
    count++;
  }
  for (const i of $range(1, count)) {
    if ((v as LuaTable<number, Json>).get(i) === undefined) return false;
  }
  return true;
}

/** True for a table with only string keys (a JSON object; an empty table qualifies). */
export function isObject(v: Json): v is JsonObject {
  if (type(v) !== "table") return false;
  for (const [k] of pairs(v as LuaTable)) {
    if (type(k) !== "string") return false;
  }
  return true;
}

/** How a value reads in an error message. */
export function describe(v: Json): string {
  if (v === undefined) return "nothing";
  if (isNull(v)) return "null";
  const t = type(v);
  if (t === "string") return string.format("%q", v as string);
  if (t === "number" || t === "boolean") return tostring(v);
  if (next(v as LuaTable)[0] === undefined) return "an empty table";
  return isArray(v) ? "an array" : "an object";
}

export function isInteger(v: Json): v is number {
  return type(v) === "number" && math.floor(v as number) === v && (v as number) > -1e15 && (v as number) < 1e15;
}

/** Reports keys of `obj` that the schema does not know, so typos do not go unnoticed. */
export function rejectUnknownKeys(p: Problems, path: string, obj: JsonObject, known: readonly string[]): void {
  for (const [k] of pairs(obj)) {
    let found = false;
    for (const name of known) {
      if (name === k) {
        found = true;
        break;
      }
    }
    if (!found) p.add(join(path, k), `unknown field (expected one of: ${known.join(", ")})`);
  }
}

export function join(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

export function index(path: string, i: number): string {
  return `${path}[${i}]`;
}

// Each reader returns the value when it is valid (or the default when absent and one is
// given), and records a problem and returns undefined otherwise.

export function readObject(p: Problems, path: string, v: Json, required: boolean): JsonObject | undefined {
  if (v === undefined) {
    if (required) p.add(path, "required object is missing");
    return undefined;
  }
  if (!isObject(v)) {
    p.add(path, `expected object, got ${describe(v)}`);
    return undefined;
  }
  return v;
}

export function readArray(p: Problems, path: string, v: Json, required: boolean): Json[] | undefined {
  if (v === undefined) {
    if (required) p.add(path, "required array is missing");
    return undefined;
  }
  if (!isArray(v)) {
    p.add(path, `expected array, got ${describe(v)}`);
    return undefined;
  }
  return v;
}

export function readString(p: Problems, path: string, v: Json, required: boolean, pattern?: string, patternHelp?: string): string | undefined {
  if (v === undefined) {
    if (required) p.add(path, "required string is missing");
    return undefined;
  }
  if (type(v) !== "string") {
    p.add(path, `expected string, got ${describe(v)}`);
    return undefined;
  }
  if (pattern !== undefined && string.match(v as string, pattern)[0] === undefined) {
    p.add(path, `expected ${patternHelp ?? "a string matching " + pattern}, got ${describe(v)}`);
    return undefined;
  }
  return v as string;
}

export function readEnum<T extends string>(p: Problems, path: string, v: Json, choices: readonly T[], fallback: T | undefined): T | undefined {
  if (v === undefined) {
    if (fallback === undefined) p.add(path, `required, one of: ${choices.join(", ")}`);
    return fallback;
  }
  for (const c of choices) {
    if (c === v) return c;
  }
  p.add(path, `expected one of ${choices.join(", ")}, got ${describe(v)}`);
  return undefined;
}

export function readInteger(p: Problems, path: string, v: Json, min: number, max: number, fallback: number | undefined): number | undefined {
  if (v === undefined) {
    if (fallback === undefined) p.add(path, `required integer ${min}-${max} is missing`);
    return fallback;
  }
  if (!isInteger(v) || v < min || v > max) {
    p.add(path, `expected integer ${min}-${max}, got ${describe(v)}`);
    return undefined;
  }
  return v;
}

export function readNumber(p: Problems, path: string, v: Json, min: number, max: number, fallback: number | undefined): number | undefined {
  if (v === undefined) {
    if (fallback === undefined) p.add(path, `required number ${min}-${max} is missing`);
    return fallback;
  }
  if (type(v) !== "number" || v !== v || (v as number) < min || (v as number) > max) {
    p.add(path, `expected number ${min}-${max}, got ${describe(v)}`);
    return undefined;
  }
  return v as number;
}

export function readBoolean(p: Problems, path: string, v: Json, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  if (type(v) !== "boolean") {
    p.add(path, `expected true or false, got ${describe(v)}`);
    return fallback;
  }
  return v as boolean;
}
