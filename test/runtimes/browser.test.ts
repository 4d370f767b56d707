// Real browser: Debian's Chromium, driven by playwright-core, loads a page from a loopback server
// that imports the package exactly as `npm pack` ships it (an import map sends "edgegrad" to
// dist/index.js, the "browser" export). The page trains, predicts and reports; the weights it
// trains must equal Node's bit for bit.
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installPacked, launchChromium, runPage, servePackagePage, tempDir } from "./harness.mjs";
import { trainDeterministic } from "./fixtures/workload.mjs";

type Det = Awaited<ReturnType<typeof trainDeterministic>>;
interface PageResult {
  entry: string;
  userAgent: string;
  calls: Record<"compileStreaming" | "instantiateStreaming" | "compile" | "instantiate" | "Module", number>;
  coldStartMs: number;
  det: Det;
  classes: number[];
  memory: { liveHandles: number; leaked: number };
}

describe("Chromium", () => {
  let tmp = "";
  let server: Awaited<ReturnType<typeof servePackagePage>> | undefined;
  let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;
  let nodeRun: Det;

  beforeAll(async () => {
    tmp = await tempDir("browser");
    const pkg = await installPacked(tmp);
    server = await servePackagePage(pkg);
    browser = await launchChromium();
    // The reference: the same run through the packed package's Node entry.
    const lib = await import(/* @vite-ignore */ pathToFileURL(join(pkg, "dist", "node.js")).href);
    nodeRun = await trainDeterministic(lib, await lib.init());
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  const open = async (path: string) => {
    const { result, errors } = await runPage(browser!.context, `${server!.url}${path}`);
    expect(errors).toEqual([]);
    return result as PageResult;
  };

  it("imports the package in a page, streams the wasm, trains: loss falls and the XOR quadrants are learned", async () => {
    const before = server!.requests.length;
    const r = await open("/index.html");
    expect(r.userAgent).toMatch(/HeadlessChrome/);
    // Fetched once, next to dist/index.js, and compiled while streaming (served as application/wasm).
    expect(server!.requests.slice(before).filter((p) => p.endsWith(".wasm"))).toEqual(["/pkg/dist/edgegrad.wasm"]);
    expect(r.calls.compileStreaming).toBe(1);
    expect(r.calls.compile + r.calls.Module).toBe(0);
    const { losses, accuracy } = r.det;
    expect(losses[losses.length - 1]!).toBeLessThan(losses[0]! / 4);
    expect(accuracy).toBeGreaterThanOrEqual(0.95);
    expect(r.classes).toEqual([0, 1, 0, 1]);
    expect(r.memory.liveHandles).toBe(0);
    console.log(
      `chromium: loss ${losses[0]!.toFixed(4)} -> ${losses[losses.length - 1]!.toFixed(4)}, accuracy ${(100 * accuracy).toFixed(1)}%, ` +
        `cold start ${r.coldStartMs.toFixed(0)} ms, weights ${r.det.hash}`,
    );
  });

  it("trains bit-identical weights to Node for the same seed and data", async () => {
    const r = await open("/index.html");
    expect(r.det.params).toBe(nodeRun.params);
    expect(r.det.hex).toBe(nodeRun.hex);
    expect(r.det.losses).toEqual(nodeRun.losses);
    console.log(`chromium: ${r.det.params} trained weights, FNV-1a of their bits ${r.det.hash} (Node: ${nodeRun.hash})`);
  });

  it("falls back to compiling the bytes when the server sends the wasm with the wrong MIME type", async () => {
    const before = server!.requests.length;
    const r = await open("/octet/index.html");
    expect(server!.requests.slice(before)).toContain("/octet/pkg/dist/edgegrad.wasm");
    expect(r.calls.compileStreaming).toBe(0);
    expect(r.calls.compile).toBe(1);
    expect(r.det.hex).toBe(nodeRun.hex);
  });

  it("the inline entry (edgegrad/inline) needs no wasm file at all", async () => {
    const before = server!.requests.length;
    const r = await open("/index.html?entry=edgegrad/inline");
    expect(r.entry).toBe("edgegrad/inline");
    expect(server!.requests.slice(before).filter((p) => p.endsWith(".wasm"))).toEqual([]);
    expect(r.det.hex).toBe(nodeRun.hex);
  });

  it("a module Web Worker using the \"worker\" export (dist/workerd.js) fetches the wasm and trains the same weights", async () => {
    const before = server!.requests.length;
    const { result, errors } = await runPage(browser!.context, `${server!.url}/web-worker.html`);
    expect(errors).toEqual([]);
    expect(server!.requests.slice(before)).toEqual(expect.arrayContaining(["/pkg/dist/workerd.js", "/pkg/dist/edgegrad.wasm"]));
    expect((result as Det).hex).toBe(nodeRun.hex);
  });
});
