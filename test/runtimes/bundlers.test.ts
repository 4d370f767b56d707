// Bundlers: a consumer project imports "edgegrad" by name and is built with rollup, Vite and
// esbuild, each for Node and for the browser (fixtures/consumer/build.mjs). The Node builds run in
// Node, the browser builds in Chromium; every one must train the reference run to the same
// weights as the package itself, and the browser bundles must stay free of eval and Node.
import { execFile } from "node:child_process";
import { copyFile, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FIXTURES, findForbidden, installPacked, launchChromium, runPage, serve, tempDir } from "./harness.mjs";
import { trainDeterministic } from "./fixtures/workload.mjs";

const run = promisify(execFile);
type Det = Awaited<ReturnType<typeof trainDeterministic>>;
type Builds = Record<string, { dir: string; files: string[] }>;

const NODE_BUILDS = ["rollup-node", "vite-node", "esbuild-node"];
const WEB_BUILDS = ["rollup-web", "vite-web", "esbuild-web"];

describe("bundled consumers (rollup, Vite, esbuild)", () => {
  let tmp = "";
  let builds: Builds;
  let nodeRun: Det;

  beforeAll(async () => {
    tmp = await tempDir("bundlers");
    const pkg = await installPacked(tmp);
    await copyFile(join(FIXTURES, "consumer", "main.mjs"), join(tmp, "main.mjs"));
    await copyFile(join(FIXTURES, "consumer", "index.html"), join(tmp, "index.html"));
    await copyFile(join(FIXTURES, "workload.mjs"), join(tmp, "workload.mjs"));
    const { stdout } = await run(process.execPath, [join(FIXTURES, "consumer", "build.mjs"), tmp], { maxBuffer: 16 << 20 });
    builds = JSON.parse(stdout) as Builds;
    const lib = await import(/* @vite-ignore */ pathToFileURL(join(pkg, "dist", "node.js")).href);
    nodeRun = await trainDeterministic(lib, await lib.init());
  }, 120_000);

  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it("Vite emits edgegrad.wasm as an asset by itself (it follows new URL(..., import.meta.url))", () => {
    expect(builds["vite-web"]!.files.some((f) => /^assets\/edgegrad-[\w-]+\.wasm$/.test(f))).toBe(true);
  });

  it.each(NODE_BUILDS)("%s runs in Node and trains the reference weights", async (name) => {
    const { stdout } = await run(process.execPath, [join(builds[name]!.dir, "main.mjs")], { cwd: tmp, maxBuffer: 16 << 20 });
    const r = JSON.parse(stdout) as Det;
    expect(r.hex).toBe(nodeRun.hex);
    expect(r.accuracy).toBeGreaterThanOrEqual(0.95);
  });

  it("the browser bundles contain no eval, new Function or Node built-ins", async () => {
    for (const name of WEB_BUILDS) {
      const { dir, files } = builds[name]!;
      const js = files.filter((f) => /\.m?js$/.test(f));
      expect(js.length, name).toBeGreaterThan(0);
      for (const f of js) expect(findForbidden(await readFile(join(dir, f), "utf8")), `${name}/${f}`).toEqual([]);
    }
  });

  it("the browser bundles run in Chromium and train the reference weights", async () => {
    const server = await serve({ mounts: { "/": join(tmp, "out") } });
    const browser = await launchChromium();
    try {
      for (const name of WEB_BUILDS) {
        const { result, errors } = await runPage(browser.context, `${server.url}/${name}/index.html`);
        expect(errors, name).toEqual([]);
        expect((result as Det).hex, name).toBe(nodeRun.hex);
      }
      // Each page fetched its own copy of the wasm (Vite's hashed asset, or the copied file).
      expect(server.requests.filter((p) => p.endsWith(".wasm"))).toHaveLength(WEB_BUILDS.length);
    } finally {
      await browser.close();
      await server.close();
    }
  }, 120_000);
});
