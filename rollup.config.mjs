// Bundles ts/ into dist/ (ESM), one entry per runtime (see package.json "exports"):
//   dist/index.js    browser / default: init() fetches edgegrad.wasm next to the module
//                    (`new URL("./edgegrad.wasm", import.meta.url)`, the pattern bundlers follow)
//   dist/node.js     Node: init() reads dist/edgegrad.wasm from disk
//   dist/workerd.js  Workers ("workerd", "worker"): init(module) with the Worker's imported
//                    edgegrad.wasm; never compiles from bytes in Cloudflare's runtime
//   dist/inline.js   base64-inlined wasm (@rollup/plugin-wasm): init() needs no file or fetch
//   dist/schedules.js, dist/callbacks.js, dist/safetensors.js   the optional subpath entries
//                    ("edgegrad/schedules", ...): not re-exported by the runtime entries, so an
//                    app that does not import them does not carry them
//   dist/core.js     the shared implementation (one copy, so error classes stay `instanceof`-equal)
// and copies build/edgegrad.wasm to dist/edgegrad.wasm (with edgegrad.wasm.d.ts). Declarations
// come from `tsc -p tsconfig.build.json` (see package.json "build:ts").
import { chmod, copyFile, mkdir, stat, writeFile } from "node:fs/promises";
import { builtinModules } from "node:module";
import { relative, resolve, sep } from "node:path";
import typescript from "@rollup/plugin-typescript";
import { wasm } from "@rollup/plugin-wasm";

const WASM = "build/edgegrad.wasm";
// Types of `import wasm from "edgegrad/edgegrad.wasm"`, the "./edgegrad.wasm" export: what Workers
// (wrangler's and miniflare's CompiledWasm module rule) hand the importing module.
const WASM_DTS = `/** edgegrad.wasm as Workers import it: compiled by the runtime when the Worker loads; pass it to init(). */
declare const module: WebAssembly.Module;
export default module;
`;

/** Copies the wasm (and its module type) next to the bundles, failing the build with a hint when it is missing. */
function copyWasm() {
  return {
    name: "edgegrad-copy-wasm",
    async buildStart() {
      try {
        await stat(WASM);
      } catch {
        this.error(`${WASM} is missing: run \`npm run build:wasm\` first`);
      }
      this.addWatchFile(WASM);
    },
    async writeBundle(options) {
      await mkdir(options.dir, { recursive: true });
      await copyFile(WASM, `${options.dir}/edgegrad.wasm`);
      await writeFile(`${options.dir}/edgegrad.wasm.d.ts`, WASM_DTS);
    },
  };
}

// The optional parts (issue 5): each imports the shared core, never a copy of it.
const SUBPATHS = { schedules: "ts/schedules.ts", callbacks: "ts/callbacks.ts", safetensors: "ts/safetensors.ts" };
const ENTRIES = { index: "ts/index.ts", node: "ts/node.ts", workerd: "ts/workerd.ts", inline: "ts/inline.ts", ...SUBPATHS };
const ENTRY_FILES = new Set(Object.values(ENTRIES).map((f) => f.slice("ts/".length)));
// Node-only modules (file I/O) stay in the node entry so the browser and Workers bundles never
// import a Node built-in.
const NODE_ONLY = new Set(["node-io.ts"]);
const TS_DIR = resolve("ts");

const library = {
  input: ENTRIES,
  external: [...builtinModules, ...builtinModules.map((m) => `node:${m}`)],
  output: {
    dir: "dist",
    format: "es",
    sourcemap: true,
    entryFileNames: "[name].js",
    chunkFileNames: "[name].js",
    // The library modules go into one shared chunk; entry modules and the inlined wasm (only
    // inline.ts imports it) stay in their entries.
    manualChunks(id) {
      const file = relative(TS_DIR, id).split(sep).join("/");
      return /^[^.].*\.ts$/.test(file) && !ENTRY_FILES.has(file) && !NODE_ONLY.has(file) ? "core" : undefined;
    },
  },
  plugins: [
    typescript({
      tsconfig: "./tsconfig.json",
      include: ["ts/**/*.ts"],
      outDir: "dist",
      sourceMap: true,
      declaration: false,
      noEmitOnError: true,
    }),
    // Always base64-embed (no size limit) and decode with the global atob, which Node >= 16,
    // browsers, Deno and Bun all have: the inline entry then never mentions process or Buffer.
    wasm({ targetEnv: "browser", maxFileSize: Number.MAX_SAFE_INTEGER }),
    copyWasm(),
  ],
};

// ---- CLI (issue 7): dist/cli.js, the `edgegrad` bin. A separate build so the manualChunks rule
// above does not pull ts/cli/* into core.js; it imports the library through ./node.js and the
// subpath entries (all external), so there is one copy of the library and the Node entry's wasm
// loading is reused.
const LIBRARY_ENTRIES = new Map(["node", ...Object.keys(SUBPATHS)].map((name) => [resolve(ENTRIES[name]), `./${name}.js`]));
const libraryEntry = (id) => LIBRARY_ENTRIES.get(id.replace(/\.js$/, ".ts"));
const cli = {
  input: { cli: "ts/cli/bin.ts" },
  external: (id, importer) =>
    builtinModules.includes(id.replace(/^node:/, "")) || (importer !== undefined && libraryEntry(resolve(importer, "..", id)) !== undefined),
  output: {
    dir: "dist",
    format: "es",
    sourcemap: true,
    entryFileNames: "[name].js",
    banner: "#!/usr/bin/env node",
    paths: (id) => libraryEntry(id) ?? id,
  },
  plugins: [
    typescript({ tsconfig: "./tsconfig.json", include: ["ts/**/*.ts"], outDir: "dist", sourceMap: true, declaration: false, noEmitOnError: true }),
    { name: "edgegrad-cli-chmod", writeBundle: (options) => chmod(`${options.dir}/cli.js`, 0o755) },
  ],
};

// ---- Training charts (issue 7): dist/charts.js, ts/charts.ts alone (pure SVG string building, no
// imports), so the browser example draws the CLI report's charts live from the very same code. A
// separate build, like the CLI's: nothing in the library entries imports it, so index.js, node.js,
// workerd.js and core.js are unchanged, and it is not in package.json "exports" (an example
// helper, not public API; the example page loads it by URL next to index.js).
const charts = {
  input: { charts: "ts/charts.ts" },
  output: { dir: "dist", format: "es", sourcemap: true, entryFileNames: "[name].js" },
  plugins: [typescript({ tsconfig: "./tsconfig.json", include: ["ts/**/*.ts"], outDir: "dist", sourceMap: true, declaration: false, noEmitOnError: true })],
};

export default [library, cli, charts];
