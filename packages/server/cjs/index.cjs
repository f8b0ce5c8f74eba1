"use strict";
// The CommonJS entry (the "require" export condition). `require("@switchyard/server")`
// returns a function, as `require("socket.io")` does: calling it with (httpServer, options)
// is `new Server(httpServer, options)`, and it carries every named export (`.Server`,
// `.Namespace`, `.createAdapter`, ...). It loads the ES module build itself through
// require(esm), so CommonJS and ESM code in one process share one copy of every class and
// of module state (no dual-package hazard). require(esm) needs Node ^20.19 or >=22.12.

let api;
try {
  api = require("../dist/index.js");
} catch (err) {
  if (err && err.code === "ERR_REQUIRE_ESM") {
    throw new Error(
      `require("@switchyard/server") needs Node ^20.19.0 or >=22.12.0 (require of ES modules); this is ${process.version}. Use import instead.`,
      { cause: err },
    );
  }
  throw err;
}

/**
 * `require("@switchyard/server")(httpServer, options)`: the same as
 * `new Server(httpServer, options)`.
 */
function switchyard(srv, opts) {
  return new api.Server(srv, opts);
}
for (const name of Object.keys(api)) switchyard[name] = api[name];

module.exports = switchyard;
