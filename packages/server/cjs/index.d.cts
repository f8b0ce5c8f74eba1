// Types of the CommonJS entry (index.cjs): a function that constructs a Server, carrying
// every named export of the ES module build as a property. For typed events, use
// `new (require("@switchyard/server").Server)<...>()`, or import the types with
// `import type { ... } from "@switchyard/server" with { "resolution-mode": "import" }`.
import type * as api from "../dist/index.js";

declare const switchyard: typeof api &
  ((...args: ConstructorParameters<typeof api.Server>) => api.Server);

export = switchyard;
