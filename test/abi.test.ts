// The ABI contract between ts/abi.ts and crates/wasm: version, export list, the status and enum
// name tables (each side has one source of truth; eg_enum_name proves they agree), typed errors
// from status codes, and every way init() can be handed the module.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import { runInNewContext } from "node:vm";
import { beforeAll, describe, expect, it } from "vitest";
import { ABI_VERSION, EnumKind, EXPORT_NAMES, loadAbi, OUT_BYTES, type Abi } from "../ts/abi.js";
import { STATUS_NAMES } from "../ts/errors.js";
import { ACTIVATIONS, INITIALIZERS, LAYER_KINDS, PARAM_ROLES } from "../ts/layers.js";
import { LOSSES } from "../ts/losses.js";
import { AbiError, DisposedError, init, InvalidArgumentError, OPTIMIZERS, ShapeError } from "../ts/node.js";
import { tensorCreate, WASM } from "./helpers.js";

const readPath = async (p: string | URL) => readFile(p instanceof URL ? fileURLToPath(p) : p);

// ---- a tiny wasm assembler, to feed init() modules that break the contract ----

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const str = (s: string) => [...uleb(s.length), ...new TextEncoder().encode(s)];
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];

/** A module exporting `memory` and functions `() -> i32` returning the given constants. */
function fakeModule(fns: Record<string, number>, opts: { memory?: boolean; importFn?: string } = {}): Uint8Array<ArrayBuffer> {
  const names = Object.keys(fns);
  const imported = opts.importFn ? 1 : 0;
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([[0x60, 0x00, 0x01, 0x7f]])),
    ...(opts.importFn ? section(2, vec([[...str("env"), ...str(opts.importFn), 0x00, 0x00]])) : []),
    ...section(3, vec(names.map(() => [0x00]))),
    ...(opts.memory !== false ? section(5, vec([[0x00, 0x01]])) : []),
    ...section(
      7,
      vec([
        ...(opts.memory !== false ? [[...str("memory"), 0x02, 0x00]] : []),
        ...names.map((n, i) => [...str(n), 0x00, ...uleb(i + imported)]),
      ]),
    ),
    ...section(10, vec(names.map((n) => { const body = [0x00, 0x41, ...sleb(fns[n]!), 0x0b]; return [...uleb(body.length), ...body]; }))),
  ];
  return new Uint8Array(bytes);
}

const allExports = (version: number): Record<string, number> => {
  // eg_alloc must return a usable, 8-aligned out-scratch address.
  const fns: Record<string, number> = Object.fromEntries(EXPORT_NAMES.map((n) => [n, 0]));
  fns["eg_abi_version"] = version;
  fns["eg_alloc"] = 1024;
  return fns;
};

describe("ABI contract", () => {
  let bytes: Uint8Array<ArrayBuffer>;
  let abi: Abi;
  // The raw exports of a separate instance, for the two the library only checks at load
  // (eg_abi_version) or never calls (eg_enum_name).
  let raw: { memory: WebAssembly.Memory; eg_abi_version(): number; eg_alloc(n: number): number; eg_enum_name(kind: number, id: number, out: number, cap: number): number };
  let out = 0;
  /** Rust's name for enum `id` of `kind` (see EnumKind), or null when the id is unknown. */
  const enumName = (kind: number, id: number): string | null => {
    const len = raw.eg_enum_name(kind, id, out, OUT_BYTES);
    if (len < 0) return null;
    expect(len).toBeLessThanOrEqual(OUT_BYTES);
    return new TextDecoder().decode(new Uint8Array(raw.memory.buffer, out, len));
  };

  beforeAll(async () => {
    bytes = new Uint8Array(await readFile(WASM));
    abi = await loadAbi(bytes);
    raw = new WebAssembly.Instance(new WebAssembly.Module(bytes), {}).exports as unknown as typeof raw;
    out = raw.eg_alloc(OUT_BYTES);
  });

  it("reports ABI version 2", () => {
    expect(ABI_VERSION).toBe(2);
    expect(raw.eg_abi_version()).toBe(2);
  });

  it("exports exactly what ts/abi.ts calls, plus memory, and imports nothing", () => {
    const mod = new WebAssembly.Module(bytes);
    const exported = WebAssembly.Module.exports(mod);
    const fns = exported.filter((e) => e.kind === "function").map((e) => e.name).sort();
    expect(fns).toEqual([...EXPORT_NAMES].sort());
    expect(exported.find((e) => e.name === "memory")?.kind).toBe("memory");
    expect(WebAssembly.Module.imports(mod)).toEqual([]);
  });

  it("owns an 8-aligned out-scratch of 64 bytes", () => {
    expect(OUT_BYTES).toBe(64);
    expect(abi.out % 8).toBe(0);
    expect(abi.out).toBeGreaterThan(0);
  });

  const tables: [string, number, readonly string[]][] = [
    ["status", EnumKind.status, STATUS_NAMES],
    ["activation", EnumKind.activation, ACTIVATIONS],
    ["loss", EnumKind.loss, LOSSES],
    ["optimizer", EnumKind.optimizer, OPTIMIZERS],
    ["init", EnumKind.init, INITIALIZERS],
    ["layer kind", EnumKind.layerKind, LAYER_KINDS],
    ["parameter role", EnumKind.paramRole, PARAM_ROLES],
  ];
  for (const [name, kind, table] of tables) {
    it(`the ${name} table agrees with Rust for every id`, () => {
      const rust: string[] = [];
      for (let id = 0; ; id++) {
        const n = enumName(kind, id);
        if (n === null) break;
        rust.push(n);
        expect(id).toBeLessThan(64);
      }
      expect(rust).toEqual([...table]);
      expect(enumName(kind, 0xffff_ffff)).toBeNull();
    });
  }

  it("returns -1 for an unknown enum kind", () => {
    expect(enumName(99, 0)).toBeNull();
  });

  it("turns a non-zero status into the typed error carrying Rust's message", () => {
    expect(() => tensorCreate(abi, 0, 3, "probe")).toThrow(InvalidArgumentError);
    expect(() => tensorCreate(abi, 0, 3, "probe")).toThrow(/^probe: shape: .*\[0, 3\]/);
    const h = tensorCreate(abi, 2, 2, "probe");
    abi.call("probe", "eg_tensor_free", h);
    // a stale handle (same slot, old generation) is recognised by Rust
    const err = (() => {
      try {
        abi.call("probe", "eg_tensor_info", h, abi.out);
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(DisposedError);
    expect((err as DisposedError).status).toBe("disposedHandle");
    expect(String((err as Error).message)).toMatch(/was disposed/);
    const a = tensorCreate(abi, 2, 3, "probe");
    const b = tensorCreate(abi, 2, 3, "probe");
    expect(() => abi.call("probe", "eg_matmul", a, b, 0, 0, abi.out)).toThrow(ShapeError);
    abi.call("probe", "eg_tensor_free", a);
    abi.call("probe", "eg_tensor_free", b);
  });

  it("rejects a module with another ABI version", async () => {
    await expect(loadAbi(fakeModule(allExports(1)))).rejects.toThrow(AbiError);
    await expect(loadAbi(fakeModule(allExports(1)))).rejects.toThrow(/ABI version 1, this library needs 2/);
  });

  it("accepts a module with every export (the fake one) and rejects one missing any export", async () => {
    await expect(loadAbi(fakeModule(allExports(2)))).resolves.toBeDefined();
    for (const missing of ["eg_matmul", "eg_model_train_rows", "eg_stats", "eg_model_stats_ptr", "eg_model_set_param_groups"]) {
      const fns = allExports(2);
      delete fns[missing];
      await expect(loadAbi(fakeModule(fns))).rejects.toThrow(new RegExp(`lacks the export\\(s\\) ${missing}`));
    }
  });

  it("rejects a module without exported memory, with imports, or that is not wasm", async () => {
    await expect(loadAbi(fakeModule(allExports(2), { memory: false }))).rejects.toThrow(/memory/);
    await expect(loadAbi(fakeModule(allExports(2), { importFn: "host" }))).rejects.toThrow(/imports env\.host/);
    await expect(loadAbi(new Uint8Array([1, 2, 3, 4]))).rejects.toThrow(AbiError);
    await expect(loadAbi(42 as never)).rejects.toThrow(/unsupported source/);
    await expect(loadAbi({ module: 7 } as never)).rejects.toThrow(/source\.module/);
  });

  describe("init(source) accepts every documented source", () => {
    const ok = async (source: Parameters<typeof init>[0]) => {
      const eg = await init(source);
      using t = eg.tensor(new Float32Array([1, 2, 3, 4]), [2, 2]);
      expect(Array.from(t.data())).toEqual([1, 2, 3, 4]);
    };

    it("bytes: Uint8Array, ArrayBuffer, DataView", async () => {
      await ok(bytes);
      await ok(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
      await ok(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    });

    it("a path and a file: URL (Node entry)", async () => {
      await ok(WASM);
      await ok(pathToFileURL(WASM));
      await ok(pathToFileURL(WASM).href);
      await expect(init("/nonexistent/edgegrad.wasm")).rejects.toThrow(/cannot read/);
    });

    it("no argument (Node entry finds the wasm on disk)", async () => {
      await ok(undefined);
    });

    it("a Response, with and without the wasm MIME type, and a promise of one", async () => {
      await ok(new Response(bytes, { headers: { "content-type": "application/wasm" } }));
      await ok(new Response(bytes));
      await ok(Promise.resolve(new Response(bytes, { headers: { "content-type": "application/wasm" } })));
      await expect(init(new Response("nope", { status: 404 }))).rejects.toThrow(/HTTP 404/);
    });

    it("a compiled module, { module }, and a module from another realm (Workers)", async () => {
      const mod = await WebAssembly.compile(bytes);
      await ok(mod);
      await ok({ module: mod });
      const foreign = runInNewContext("new WebAssembly.Module(b)", { b: bytes }) as WebAssembly.Module;
      expect(foreign instanceof WebAssembly.Module).toBe(false);
      await ok(foreign);
      await ok({ module: foreign });
    });

    it("the loader helper reads paths through readPath only", async () => {
      await expect(loadAbi(WASM)).rejects.toThrow(/cannot read the path/);
      await expect(loadAbi(WASM, readPath)).resolves.toBeDefined();
    });
  });

  // Only after `npm run build:ts`: the bundles in dist/ (Node entry reads dist/edgegrad.wasm,
  // inline entry carries it base64-encoded, and all share one core so classes stay identical).
  const dist = (f: string) => new URL(`../dist/${f}`, import.meta.url);
  it.skipIf(!existsSync(dist("inline.js")))("the built dist entries load and agree", async () => {
    type Entry = typeof import("../ts/node.js");
    const node = (await import(/* @vite-ignore */ dist("node.js").href)) as Entry;
    const inline = (await import(/* @vite-ignore */ dist("inline.js").href)) as Entry;
    const web = (await import(/* @vite-ignore */ dist("index.js").href)) as Entry;
    expect(inline.ShapeError).toBe(node.ShapeError);
    expect(web.Tensor).toBe(node.Tensor);
    for (const eg of [await node.init(), await inline.init(), await web.init(await readFile(fileURLToPath(dist("edgegrad.wasm"))))]) {
      const t = eg.tensor(new Float32Array([1, 2]), [1, 2]);
      expect(Array.from(t.data())).toEqual([1, 2]);
      t.dispose();
      expect(eg.memory().liveHandles).toBe(0);
    }
  });

  it.skipIf(!existsSync(dist("schedules.js")))("the built subpath entries import the shared core (one copy of the error classes)", async () => {
    const node = (await import(/* @vite-ignore */ dist("node.js").href)) as typeof import("../ts/node.js");
    const schedules = (await import(/* @vite-ignore */ dist("schedules.js").href)) as typeof import("../ts/schedules.js");
    const callbacks = (await import(/* @vite-ignore */ dist("callbacks.js").href)) as typeof import("../ts/callbacks.js");
    const safetensors = (await import(/* @vite-ignore */ dist("safetensors.js").href)) as typeof import("../ts/safetensors.js");
    expect(() => schedules.stepLR({ stepSize: 0 })).toThrow(node.InvalidArgumentError);
    expect(() => callbacks.earlyStopping({ patience: -1 })).toThrow(node.InvalidArgumentError);
    const eg = await node.init();
    const m = eg.sequential({ inputs: 2, seed: 1 }, [node.dense(1)]);
    m.compile({ loss: "meanSquaredError", optimizer: node.sgd({ lr: 0.1 }) });
    // fit() and load() take the subpath's schedule (recognised by the core's brand).
    const s = schedules.stepLR({ stepSize: 1, gamma: 0.5 });
    await m.fit(new Float32Array(4), new Float32Array(2), { epochs: 2, schedule: s, accuracy: false });
    expect(m.lr).toBe(0.025);
    const again = schedules.stepLR({ stepSize: 1, gamma: 0.5 });
    eg.load(m.save({ schedule: s }), { schedule: again }).dispose();
    expect([again.epoch, again.lr]).toEqual([2, 0.025]);
    expect(safetensors.safetensorsNames(m)).toEqual(["0.weight", "0.bias"]);
    expect(() => safetensors.loadSafetensors(m, new Uint8Array(3))).toThrow(node.InvalidArgumentError);
    m.dispose();
    expect(eg.memory().liveHandles).toBe(0);
  });
});
