// The package as published: its "exports" map, the publint and arethetypeswrong checks, and what
// the browser and Workers entry points may contain (no eval, no new Function, no Node built-ins).
import { execFile } from "node:child_process";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { runInNewContext } from "node:vm";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findForbidden, importClosure, installPacked, packTarball, ROOT, tempDir } from "./harness.mjs";

const run = promisify(execFile);
const bin = (name: string) => join(ROOT, "node_modules", ".bin", name);

interface Pkg {
  type: string;
  sideEffects: boolean;
  files: string[];
  exports: Record<string, string | Record<string, string | Record<string, string>>>;
}

describe("package", () => {
  let tmp = "";
  let pkgDir = "";
  let pkg: Pkg;

  beforeAll(async () => {
    tmp = await tempDir("package");
    pkgDir = await installPacked(tmp);
    pkg = JSON.parse(await readFile(join(pkgDir, "package.json"), "utf8")) as Pkg;
  }, 60_000);

  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it("is ESM without side effects, with types first and an entry per runtime", () => {
    expect(pkg.type).toBe("module");
    expect(pkg.sideEffects).toBe(false);
    // One entry per runtime, each with its own declarations first (the node entry also exports
    // the file helpers saveCheckpoint / loadCheckpoint).
    const root = pkg.exports["."] as Record<string, Record<string, string>>;
    expect(Object.keys(root)).toEqual(["workerd", "worker", "browser", "node", "default"]);
    expect(root).toMatchObject({
      workerd: { types: "./dist/types/workerd.d.ts", default: "./dist/workerd.js" },
      worker: { types: "./dist/types/workerd.d.ts", default: "./dist/workerd.js" },
      browser: { types: "./dist/types/index.d.ts", default: "./dist/index.js" },
      node: { types: "./dist/types/node.d.ts", default: "./dist/node.js" },
      default: { types: "./dist/types/index.d.ts", default: "./dist/index.js" },
    });
    for (const [sub, target] of Object.entries(pkg.exports)) {
      if (typeof target !== "object") continue;
      const leaves = sub === "." ? Object.entries(target) : [[sub, target]];
      for (const [cond, t] of leaves) expect(Object.keys(t as object)[0], `${sub} ${cond}`).toBe("types");
    }
    expect(pkg.exports["./edgegrad.wasm"]).toMatchObject({ default: "./dist/edgegrad.wasm" });
    // The optional parts are subpath entries of their own (not re-exported by "."), each on the shared core.
    for (const sub of ["schedules", "callbacks", "safetensors"]) {
      expect(pkg.exports[`./${sub}`], sub).toEqual({ types: `./dist/types/${sub}.d.ts`, default: `./dist/${sub}.js` });
    }
  });

  it("the subpath entries import the shared core instead of carrying a copy of it", async () => {
    const core = join(pkgDir, "dist", "core.js");
    for (const sub of ["schedules", "callbacks", "safetensors"]) {
      const source = await readFile(join(pkgDir, "dist", `${sub}.js`), "utf8");
      expect(source, sub).toMatch(/from '\.\/core\.js'/);
      expect(source, sub).not.toMatch(/class \w*Error\b/);
      expect(await importClosure(join(pkgDir, "dist", `${sub}.js`)), sub).toContain(core);
    }
  });

  it("ships every file its exports name (checked in the npm pack output)", async () => {
    const leaves = (t: unknown): string[] => (typeof t === "string" ? [t] : Object.values(t as object).flatMap(leaves));
    const targets = leaves(pkg.exports);
    for (const t of new Set(targets)) await expect(readFile(join(pkgDir, t)), t).resolves.toBeDefined();
  });

  it("passes publint --strict", async () => {
    const { stdout } = await run(bin("publint"), ["--strict", ROOT]);
    expect(stdout).toMatch(/All good!/);
  }, 60_000);

  it("passes @arethetypeswrong/cli (profile esm-only: the package is ESM, CommonJS needs import())", async () => {
    const tarball = await packTarball(tmp);
    try {
      // Exits non-zero on any problem; the JSON names them.
      const { stdout } = await run(bin("attw"), [tarball, "--profile", "esm-only", "--format", "json"], { maxBuffer: 16 << 20 });
      const report = JSON.parse(stdout) as { analysis: { entrypoints: Record<string, unknown> } };
      expect(Object.keys(report.analysis.entrypoints).sort()).toEqual([
        ".",
        "./callbacks",
        "./edgegrad.wasm",
        "./inline",
        "./package.json",
        "./safetensors",
        "./schedules",
      ]);
    } finally {
      await rm(tarball, { force: true });
    }
  }, 60_000);

  it("browser and Workers entries (and all they import) have no eval, new Function or Node built-ins", async () => {
    for (const entry of ["index.js", "workerd.js", "inline.js", "schedules.js", "callbacks.js", "safetensors.js"]) {
      const files = await importClosure(join(pkgDir, "dist", entry));
      expect(files.length, entry).toBeGreaterThanOrEqual(2); // the entry and the shared core
      for (const f of files) expect(findForbidden(await readFile(f, "utf8")), f).toEqual([]);
    }
    // The scan does see these things: the Node entry imports node:fs.
    expect(findForbidden(await readFile(join(pkgDir, "dist", "node.js"), "utf8")).join()).toMatch(/Node built-in/);
    const bad = "new Function('return 1'); Function('x'); eval('x'); require('fs'); Buffer.from(''); process.versions; import('node:os')";
    expect(findForbidden(bad)).toHaveLength(7);
    // Only real uses count: not strings, comments, or a method that happens to be called eval.
    const fine = "class M { eval() { return 1 } } new M().eval(); const s = `call eval() or new Function`; // require('fs')";
    expect(findForbidden(fine)).toEqual([]);
  });

  it("the Workers entry insists on a compiled module in Cloudflare's runtime, recognised across realms", async () => {
    type Entry = typeof import("../../ts/workerd.js");
    const lib = (await import(/* @vite-ignore */ pathToFileURL(join(pkgDir, "dist", "workerd.js")).href)) as Entry;
    const bytes = await readFile(join(pkgDir, "dist", "edgegrad.wasm"));
    // A module from another realm is not `instanceof WebAssembly.Module` here, as in some Workers setups.
    const foreign = runInNewContext("new WebAssembly.Module(b)", { b: bytes }) as WebAssembly.Module;
    expect(foreign instanceof WebAssembly.Module).toBe(false);
    const had = Object.getOwnPropertyDescriptor(globalThis, "navigator");
    Object.defineProperty(globalThis, "navigator", { value: { userAgent: "Cloudflare-Workers" }, configurable: true });
    try {
      await expect(lib.init()).rejects.toThrow(/import wasm from "edgegrad\/edgegrad\.wasm"/);
      await expect(lib.init(bytes)).rejects.toBeInstanceOf(lib.AbiError);
      for (const source of [foreign, { module: foreign }]) {
        const eg = await lib.init(source);
        const t = eg.tensor(new Float32Array([1, 2]), [1, 2]);
        expect(Array.from(t.data())).toEqual([1, 2]);
        t.dispose();
      }
    } finally {
      if (had) Object.defineProperty(globalThis, "navigator", had);
      else delete (globalThis as { navigator?: unknown }).navigator;
    }
    // Outside Cloudflare (a browser's Web Worker, resolved through "worker") bytes are fine.
    expect((await lib.init(bytes)).memory().liveHandles).toBe(0);
  });
});
