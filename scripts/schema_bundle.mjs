// Bundles the config's JSON Schema, written as one file per section next to each validator
// (src/config/autoscale.schema.json and the files it references with relative `$ref`s), into
// one self-contained document for users: every referenced file is inlined under the root's
// `$defs` (named after the file: balancer.schema.json -> #/$defs/balancer) and every `$ref` is
// rewritten to a JSON pointer inside the bundle, so any draft 2020-12 tool can use it alone.
import { readFileSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";

export const BUNDLE_ID = "https://lua-resty-autoscale/schema/autoscale.schema.json";

/** Returns the bundled schema of `entry` (an absolute path). Throws on a broken reference. */
export function bundleSchema(entry) {
  const root = JSON.parse(readFileSync(entry, "utf8"));
  root.$defs ??= {};
  const nameOf = new Map([[entry, ""]]);

  function defName(file) {
    const name = basename(file).replace(/\.schema\.json$/, "").replace(/\.json$/, "");
    if (name in root.$defs) throw new Error(`schema bundle: $defs/${name} is taken (from ${file})`);
    return name;
  }

  // Where a file's own "#..." pointers land in the bundle.
  const prefixOf = (file) => (nameOf.get(file) === "" ? "#" : `#/$defs/${nameOf.get(file)}`);

  function embed(file) {
    if (nameOf.has(file)) return nameOf.get(file);
    const name = defName(file);
    nameOf.set(file, name);
    const doc = JSON.parse(readFileSync(file, "utf8"));
    delete doc.$schema;
    delete doc.$id;
    root.$defs[name] = doc;
    rewrite(doc, file);
    return name;
  }

  function rewrite(node, file) {
    if (Array.isArray(node)) {
      for (const item of node) rewrite(item, file);
      return;
    }
    if (node === null || typeof node !== "object") return;
    for (const [key, value] of Object.entries(node)) {
      if (key === "$ref" && typeof value === "string") {
        const hash = value.indexOf("#");
        const target = hash === -1 ? value : value.slice(0, hash);
        const fragment = hash === -1 ? "" : value.slice(hash + 1);
        if (target === "") {
          node.$ref = prefixOf(file) + fragment;
        } else {
          if (/^[a-z]+:/i.test(target)) throw new Error(`schema bundle: absolute $ref ${value} in ${file}`);
          const name = embed(resolve(dirname(file), target));
          node.$ref = `#/$defs/${name}${fragment}`;
        }
      } else {
        rewrite(value, file);
      }
    }
  }

  rewrite(root, entry);
  root.$id = BUNDLE_ID;
  return root;
}
