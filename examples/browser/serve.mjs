// Serves this example on loopback: the page at / and the package's browser build at /edgegrad/
// (the import map in index.html points there).
//
//   node examples/browser/serve.mjs [port]      then open the printed URL
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createServer } from "node:http";
import { dirname, extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = fileURLToPath(new URL(".", import.meta.url));
// Wherever the package is installed (or this repository's own dist/ when run from a checkout).
const DIST = dirname(fileURLToPath(import.meta.resolve("edgegrad")));
const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".wasm": "application/wasm", ".map": "application/json" };

/** Starts the server; resolves to its URL and a close function. */
export async function start({ port = 0, host = "127.0.0.1" } = {}) {
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    const [base, rest] = path.startsWith("/edgegrad/") ? [DIST, path.slice(10)] : [HERE, path === "/" ? "index.html" : path.slice(1)];
    const file = normalize(join(base, rest));
    try {
      if (!file.startsWith(base.endsWith(sep) ? base : base + sep) || !(await stat(file)).isFile()) throw new Error("not a file");
      res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
      createReadStream(file).pipe(res);
    } catch {
      res.writeHead(404).end("not found");
    }
  });
  await new Promise((ok, fail) => server.once("error", fail).listen(port, host, ok));
  const url = `http://${host}:${server.address().port}/`;
  return { url, close: () => new Promise((ok) => (server.closeAllConnections(), server.close(() => ok()))) };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { url } = await start({ port: Number(process.argv[2] ?? 8080) });
  console.log(`edgegrad browser example: open ${url}`);
}
