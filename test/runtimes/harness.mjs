// Shared plumbing for the real-runtime tests (test/runtimes/*.test.ts) and scripts/size-report.mjs:
// pack the package as npm would publish it, serve files on loopback, drive Debian's Chromium
// through playwright-core, and bundle + run a Worker in workerd through miniflare the way wrangler
// would. Everything binds to 127.0.0.1 on an ephemeral port and is closed by its caller.

import { execFile, spawn } from "node:child_process";
import { createReadStream } from "node:fs";
import { access, copyFile, mkdir, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { createServer } from "node:http";
import { isBuiltin } from "node:module";
import { tmpdir } from "node:os";
import { dirname, extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { parseAst } from "rollup/parseAst";

const run = promisify(execFile);

/** The repository root. */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Debian's chromium (apt-get install chromium); never a browser downloaded by a tool. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Flags for a quiet, offline, root-friendly headless Chromium on a CI machine. */
export const CHROMIUM_ARGS = [
  "--no-sandbox", // CI runs as root, where Chromium's sandbox refuses to start
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
];

/** test/runtimes/fixtures: the page, Worker and consumer sources the tests run. */
export const FIXTURES = fileURLToPath(new URL("./fixtures/", import.meta.url));

/** A fresh temporary directory; remove it with `rm(dir, { recursive: true, force: true })`. */
export async function tempDir(prefix) {
  return mkdtemp(join(tmpdir(), `edgegrad-${prefix}-`));
}

/** Packs the package with `npm pack` (exactly the published "files") into `dir`; returns the .tgz path. */
export async function packTarball(dir) {
  try {
    await access(join(ROOT, "dist", "edgegrad.wasm"));
  } catch {
    throw new Error("dist/ is not built: run `npm run build` (or build:wasm and build:ts) first");
  }
  const { stdout } = await run("npm", ["pack", ROOT, "--pack-destination", dir, "--json", "--silent"], {
    cwd: dir,
    maxBuffer: 16 << 20,
  });
  const [{ filename }] = JSON.parse(stdout);
  return join(dir, filename);
}

/**
 * Packs the package and unpacks it into `<dir>/node_modules/edgegrad`, where consumers and
 * bundlers find it, as after `npm install`. Returns that directory.
 */
export async function installPacked(dir) {
  const tarball = await packTarball(dir);
  const pkg = join(dir, "node_modules", "edgegrad");
  await mkdir(pkg, { recursive: true });
  await run("tar", ["xzf", tarball, "-C", pkg, "--strip-components=1"]);
  await rm(tarball);
  return pkg;
}

const MIME = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
  ".css": "text/css",
  ".svg": "image/svg+xml",
  ".wasm": "application/wasm",
};

/**
 * Serves `mounts` (URL prefix such as "/pkg/" -> directory) and `pages` (exact path -> HTML
 * string) on 127.0.0.1 with an ephemeral port. A path under "/octet/" is served like the rest of
 * the path but with `.wasm` as application/octet-stream: a misconfigured server, which the loader
 * must survive. `requests` lists every path asked for.
 */
export async function serve({ mounts = {}, pages = {} }) {
  const requests = [];
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    let path = decodeURIComponent(url.pathname);
    requests.push(path);
    const octet = path.startsWith("/octet/");
    if (octet) path = path.slice("/octet".length);
    if (path in pages) {
      res.writeHead(200, { "content-type": MIME[".html"], "cache-control": "no-store" });
      res.end(pages[path]);
      return;
    }
    const prefix = Object.keys(mounts)
      .sort((a, b) => b.length - a.length)
      .find((p) => path.startsWith(p));
    if (prefix === undefined) return notFound(res);
    const base = resolve(mounts[prefix]);
    const file = normalize(join(base, path.slice(prefix.length)));
    if (file !== base && !file.startsWith(base + sep)) return notFound(res);
    try {
      const info = await stat(file);
      if (!info.isFile()) return notFound(res);
      const ext = extname(file);
      const type = octet && ext === ".wasm" ? "application/octet-stream" : (MIME[ext] ?? "application/octet-stream");
      res.writeHead(200, { "content-type": type, "content-length": info.size, "cache-control": "no-store" });
      createReadStream(file).pipe(res);
    } catch {
      notFound(res);
    }
  });
  await new Promise((ok, fail) => {
    server.once("error", fail);
    server.listen(0, "127.0.0.1", ok);
  });
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

function notFound(res) {
  res.writeHead(404, { "content-type": "text/plain" });
  res.end("not found");
}

/**
 * The test page: an import map sending "edgegrad" (and "edgegrad/inline") to the package served
 * under ./pkg/, then fixtures/page.mjs. Relative URLs, so under /octet/ everything (including the
 * `new URL("./edgegrad.wasm", import.meta.url)` fetch) goes through the wrong-MIME route.
 */
export function packagePageHtml() {
  const imports = { edgegrad: "./pkg/dist/index.js", "edgegrad/inline": "./pkg/dist/inline.js" };
  return `<!doctype html>
<meta charset="utf-8">
<title>edgegrad runtime test</title>
<link rel="icon" href="data:,">
<script type="importmap">${JSON.stringify({ imports })}</script>
<script type="module" src="./fixtures/page.mjs"></script>
`;
}

/** A page that runs fixtures/web-worker.mjs in a module Web Worker and reports what it posts. */
export function webWorkerPageHtml() {
  return `<!doctype html>
<meta charset="utf-8">
<title>edgegrad in a Web Worker</title>
<link rel="icon" href="data:,">
<script type="module">
  const worker = new Worker("./fixtures/web-worker.mjs", { type: "module" });
  worker.onmessage = ({ data }) => (data.error ? (window.__error = data.error) : (window.__result = data.result));
  worker.onerror = (e) => (window.__error = e.message || "worker failed to load");
</script>
`;
}

/**
 * Serves the unpacked package at /pkg/ and the fixtures at /fixtures/, with the test page at
 * /index.html and the Web Worker page at /web-worker.html.
 */
export function servePackagePage(pkgDir) {
  return serve({
    mounts: { "/pkg/": pkgDir, "/fixtures/": FIXTURES },
    pages: { "/index.html": packagePageHtml(), "/web-worker.html": webWorkerPageHtml() },
  });
}

/**
 * Launches headless Chromium with a fresh profile directory. `close()` shuts the browser and
 * deletes the profile; call it in a `finally` / afterAll.
 */
export async function launchChromium() {
  try {
    await access(CHROMIUM);
  } catch {
    throw new Error(`no Chromium at ${CHROMIUM}: install Debian's (apt-get install chromium) or set CHROMIUM_PATH`);
  }
  const { chromium } = await import("playwright-core");
  const profile = await tempDir("chromium-profile");
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: 60_000,
    });
  } catch (e) {
    await rm(profile, { recursive: true, force: true });
    throw e;
  }
  return {
    context,
    version: context.browser()?.version() ?? "",
    close: async () => {
      await context.close().catch(() => {});
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Opens `url` in a new tab of `context`, waits until the page sets `window.__result` (or
 * `window.__error`) and returns it with the console lines and page errors seen. A response with
 * an HTTP error or an uncaught page error fails at once instead of waiting for the timeout.
 */
export async function runPage(context, url, { timeout = 90_000 } = {}) {
  const page = await context.newPage();
  const logs = [];
  const errors = [];
  let fail;
  const failed = new Promise((_, reject) => (fail = reject));
  failed.catch(() => {});
  page.on("console", (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => {
    errors.push(String(e));
    fail(new Error(`uncaught error in ${url}: ${e}`));
  });
  page.on("response", (r) => {
    if (r.status() >= 400) fail(new Error(`${url} requested ${r.url()}: HTTP ${r.status()}`));
  });
  try {
    await Promise.race([page.goto(url, { waitUntil: "load", timeout }), failed]);
    await Promise.race([
      page.waitForFunction(() => "__result" in window || "__error" in window, null, { timeout, polling: 50 }),
      failed,
    ]);
    const { result, error } = await page.evaluate(() => ({ result: window.__result, error: window.__error }));
    if (error !== undefined) throw new Error(`page ${url} failed: ${error}`);
    return { result, logs, errors };
  } catch (e) {
    if (e instanceof Error) e.message += `\nconsole:\n${logs.join("\n")}\npage errors:\n${errors.join("\n")}`;
    throw e;
  } finally {
    await page.close().catch(() => {});
  }
}

/** esbuild plugin doing what wrangler does with `import x from "*.wasm"`: keep it as a separate CompiledWasm module next to the bundle. */
function wasmModules(outDir, copies) {
  return {
    name: "wasm-modules",
    setup(build) {
      build.onResolve({ filter: /\.wasm$/ }, async (args) => {
        if (args.pluginData?.nested) return undefined; // our own build.resolve below
        const resolved = await resolvePath(build, args);
        const name = resolved.split(/[\\/]/).pop();
        copies.push([resolved, join(outDir, name)]);
        return { path: `./${name}`, external: true };
      });
      build.onResolve({ filter: /^cloudflare:/ }, (args) => ({ path: args.path, external: true }));
    },
  };
}

async function resolvePath(build, args) {
  // Let esbuild resolve the specifier itself (package exports, conditions), then keep the file.
  const r = await build.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, pluginData: { nested: true } });
  if (r.errors.length > 0) throw new Error(r.errors.map((e) => e.text).join("\n"));
  return r.path;
}

/**
 * Bundles a Worker as wrangler does (esbuild, conditions workerd/worker/browser, ESM, wasm
 * imports kept as CompiledWasm modules) into `outDir/worker.js`. Returns the script path.
 */
export async function bundleWorker(entry, outDir) {
  const { build } = await import("esbuild");
  await mkdir(outDir, { recursive: true });
  const copies = [];
  const outfile = join(outDir, "worker.js");
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    conditions: ["workerd", "worker", "browser"],
    mainFields: ["module", "main"],
    plugins: [wasmModules(outDir, copies)],
    logLevel: "silent",
  });
  for (const [from, to] of copies) await copyFile(from, to);
  return outfile;
}

/**
 * Starts workerd through miniflare on loopback with `scriptPath` as an ES-module Worker whose
 * `.wasm` imports load as CompiledWasm modules. Extra miniflare options pass through.
 */
export async function startWorker(scriptPath, options = {}) {
  const { Miniflare } = await import("miniflare");
  const mf = new Miniflare({
    modules: true,
    scriptPath,
    modulesRoot: dirname(scriptPath),
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }],
    compatibilityDate: "2025-01-01",
    host: "127.0.0.1",
    port: 0,
    cf: false, // a placeholder Request.cf instead of downloading one from workers.cloudflare.com
    ...options,
  });
  try {
    const url = await mf.ready;
    return { mf, url: url.href.replace(/\/$/, "") };
  } catch (e) {
    await mf.dispose().catch(() => {});
    throw e;
  }
}

/**
 * What browser and Workers code must not contain, found in the syntax tree (so strings, comments
 * and methods that happen to be named `eval` do not count): calls of the global `eval`,
 * `Function` / `new Function` (code from strings), `require()`, imports of Node built-ins, and
 * uses of Node's `process`, `Buffer`, `__dirname` and `__filename`. Returns one line per finding.
 */
export function findForbidden(code) {
  const found = [];
  const at = (node, what) => found.push(`${what}: …${code.slice(Math.max(0, node.start - 30), node.end + 30)}…`);
  const isId = (node, names) => node?.type === "Identifier" && names.includes(node.name);
  const visit = (node) => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (node === null || typeof node !== "object" || typeof node.type !== "string") return;
    switch (node.type) {
      case "CallExpression":
      case "NewExpression":
        if (isId(node.callee, ["eval"])) at(node, "eval");
        if (isId(node.callee, ["Function"])) at(node, "new Function");
        if (node.type === "CallExpression" && isId(node.callee, ["require"])) at(node, "require()");
        break;
      case "ImportDeclaration":
      case "ExportAllDeclaration":
      case "ExportNamedDeclaration":
      case "ImportExpression":
        if (typeof node.source?.value === "string" && isBuiltin(node.source.value)) at(node, "Node built-in import");
        break;
      case "MemberExpression":
        if (isId(node.object, ["process", "Buffer"])) at(node, node.object.name);
        break;
      case "Identifier":
        if (isId(node, ["__dirname", "__filename"])) at(node, node.name);
        break;
    }
    for (const [key, value] of Object.entries(node)) if (key !== "type" && typeof value === "object") visit(value);
  };
  visit(parseAst(code));
  return found;
}

/** `entry` and every file it imports statically or dynamically (relative specifiers only). */
export async function importClosure(entry) {
  const seen = new Set();
  const todo = [resolve(entry)];
  while (todo.length > 0) {
    const file = todo.pop();
    if (seen.has(file)) continue;
    seen.add(file);
    const code = await readFile(file, "utf8");
    for (const m of code.matchAll(/\b(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+\.m?js)["']/g)) todo.push(resolve(dirname(file), m[1]));
  }
  return [...seen].sort();
}

/**
 * Runs a Node script that prints a loopback URL once it listens (an example's server); resolves
 * to that URL and `close()`, which sends SIGTERM and waits for the process to exit.
 */
export async function startScript(script, args = [], { timeout = 60_000 } = {}) {
  const child = spawn(process.execPath, [script, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise((ok) => child.once("exit", () => ok()));
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
  };
  let out = "";
  try {
    const url = await new Promise((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`${script} printed no URL within ${timeout} ms:\n${out}`)), timeout);
      const onData = (d) => {
        out += String(d);
        const m = /http:\/\/127\.0\.0\.1:\d+\//.exec(out);
        if (m) {
          clearTimeout(timer);
          ok(m[0]);
        }
      };
      child.stdout.on("data", onData);
      child.stderr.on("data", (d) => (out += String(d)));
      child.once("exit", (code) => {
        clearTimeout(timer);
        fail(new Error(`${script} exited with ${code}:\n${out}`));
      });
    });
    return { url, close, output: () => out };
  } catch (e) {
    await close();
    throw e;
  }
}
