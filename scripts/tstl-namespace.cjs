// Puts every compiled module under the Lua namespace `resty.autoscale.*`, including the lualib
// bundle, so that the rock cannot collide with another TypeScriptToLua project's modules.
// tstl emits `require("core.window")` for src/core/window.ts; we rewrite it to
// `require("resty.autoscale.core.window")`. Runtime modules (ngx.*, cjson, resty.*, ffi) are
// left alone because they are not files of this build.
const path = require("path");

const NAMESPACE = "resty.autoscale.";

/** @type {import("typescript-to-lua").Plugin} */
module.exports = {
  beforeEmit(program, options, emitHost, result) {
    const outDir = path.resolve(options.outDir);
    const own = new Set();
    for (const file of result) {
      const rel = path.relative(outDir, file.outputPath).replace(/\.lua$/, "");
      own.add(rel.split(path.sep).join("."));
    }
    for (const file of result) {
      file.code = file.code.replace(/require\("([^"]+)"\)/g, (whole, mod) =>
        own.has(mod) ? `require("${NAMESPACE}${mod}")` : whole,
      );
    }
  },
};
