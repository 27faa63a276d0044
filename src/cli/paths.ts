import { join } from "node:path";

/** The repository (or installed package) root: this file is build/node/src/cli/paths.js. */
export const projectRoot = join(__dirname, "..", "..", "..", "..");
export const luaDir = join(projectRoot, "build", "lua");
