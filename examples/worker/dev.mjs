// Runs this example locally in workerd — what `npx wrangler dev` does, for a checkout without
// wrangler: bundle src/index.js as wrangler would (esbuild, "workerd" condition, the .wasm import
// kept as a CompiledWasm module), then start it under miniflare with Durable Object storage
// persisted to a directory, so stopping and starting again keeps the learned weights.
//
//   node examples/worker/dev.mjs [port] [--state DIR]     (default port 8787, state in .state/)
import { rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { bundleWorker, startWorker, tempDir } from "../../test/runtimes/harness.mjs";

const HERE = fileURLToPath(new URL(".", import.meta.url));
const { values, positionals } = parseArgs({ options: { state: { type: "string" } }, allowPositionals: true });
const port = Number(positionals[0] ?? 8787);
const persistDir = values.state ?? `${HERE}.state`;

const build = await tempDir("worker-build");
let started;
try {
  const script = await bundleWorker(`${HERE}src/index.js`, build);
  started = await startWorker(script, {
    port,
    durableObjects: { LEARNER: { className: "Learner", useSQLite: true } },
    durableObjectsPersist: persistDir,
  });
} finally {
  await rm(build, { recursive: true, force: true }); // workerd has loaded the bundle by now
}
const { mf, url } = started;
console.log(`edgegrad worker example on ${url}/  (POST /learn, POST /predict, GET /state; storage in ${persistDir})`);

// Shut workerd down cleanly on Ctrl-C or a kill, so nothing is left running.
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, async () => {
    await mf.dispose();
    process.exit(0);
  });
}
