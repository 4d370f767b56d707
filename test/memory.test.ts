// Tensor lifecycle and heap bookkeeping: idempotent dispose, use-after-dispose, stale handles,
// scope(), `using`, live counts returning to baseline, heap views surviving memory.grow, and the
// FinalizationRegistry backstop counting leaks; zero allocations per training step (JS and wasm).
import { spawnSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { loadAbi } from "../ts/abi.js";
import { dense, DisposedError, init, InvalidArgumentError, sgd, Tensor, type Edgegrad } from "../ts/node.js";
import { tensorCreate, WASM } from "./helpers.js";


let eg: Edgegrad;
beforeAll(async () => {
  eg = await init(WASM);
});

const live = () => eg.memory().liveHandles;

describe("tensor lifecycle", () => {
  it("copies data in and out", () => {
    const src = new Float32Array([1, 2, 3, 4, 5, 6]);
    const t = eg.tensor(src, [2, 3]);
    expect(t.shape).toEqual([2, 3]);
    expect([t.rows, t.cols, t.size]).toEqual([2, 3, 6]);
    src[0] = 99; // the tensor holds its own copy
    const out = t.data();
    expect(Array.from(out)).toEqual([1, 2, 3, 4, 5, 6]);
    out[1] = 42; // and data() returns a copy
    expect(t.data()[1]).toBe(2);
    expect(Array.from(eg.zeros([2, 2]).data())).toEqual([0, 0, 0, 0]);
    t.dispose();
  });

  it("dispose is idempotent and use after dispose throws DisposedError", () => {
    const base = live();
    const t = eg.tensor(new Float32Array(4), [2, 2]);
    expect(live()).toBe(base + 1);
    expect(t.disposed).toBe(false);
    t.dispose();
    t.dispose();
    t.dispose();
    expect(t.disposed).toBe(true);
    expect(live()).toBe(base);
    expect(() => t.data()).toThrow(DisposedError);
    expect(() => t.handle).toThrow(DisposedError);
    const u = eg.tensor(new Float32Array(4), [2, 2]);
    expect(() => eg.matmul(t, u)).toThrow(DisposedError);
    expect(() => eg.matmul(u, t)).toThrow(DisposedError);
    expect(String(t)).toBe("Tensor(disposed)");
    u.dispose();
    expect(live()).toBe(base);
  });

  it("Rust rejects a stale handle with DisposedHandle, even after its slot is reused", async () => {
    const abi = await loadAbi(await readFile(WASM));
    const h = tensorCreate(abi, 1, 1, "t");
    abi.call("t", "eg_tensor_free", h);
    const reused = tensorCreate(abi, 1, 1, "t");
    expect(reused & 0xffff).toBe(h & 0xffff); // same slot ...
    expect(reused).not.toBe(h); // ... new generation
    expect(() => abi.call("t", "eg_tensor_info", h, abi.out)).toThrow(DisposedError);
    expect(() => abi.call("t", "eg_tensor_free", h)).toThrow(DisposedError);
    expect(() => abi.call("t", "eg_tensor_free", h)).toThrow(/was disposed/);
    abi.call("t", "eg_tensor_info", reused, abi.out);
    expect([abi.outU32(0), abi.outU32(1)]).toEqual([1, 1]);
    abi.call("t", "eg_tensor_free", reused);
  });

  it("`using` disposes at the end of the block", () => {
    const base = live();
    let seen: Tensor;
    {
      using t = eg.tensor(new Float32Array([1]), [1, 1]);
      seen = t;
      expect(live()).toBe(base + 1);
    }
    expect(seen.disposed).toBe(true);
    expect(live()).toBe(base);
    {
      using m = eg.sequential({ inputs: 2, seed: 1 }, [dense(2)]);
      expect(m.paramCount).toBe(6);
    }
    expect(live()).toBe(base);
  });

  it("matmul computes op(a)·op(b) for all four transpose combinations", () => {
    eg.scope(() => {
      const a = eg.tensor(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]); // [[1,2,3],[4,5,6]]
      const b = eg.tensor(new Float32Array([1, 0, 0, 1, 1, 1]), [3, 2]); // [[1,0],[0,1],[1,1]]
      const ab = eg.matmul(a, b);
      expect(ab.shape).toEqual([2, 2]);
      expect(Array.from(ab.data())).toEqual([4, 5, 10, 11]);
      const bt = eg.tensor(new Float32Array([1, 0, 1, 0, 1, 1]), [2, 3]); // bᵀ
      expect(Array.from(eg.matmul(a, bt, { transposeB: true }).data())).toEqual([4, 5, 10, 11]);
      const at = eg.tensor(new Float32Array([1, 4, 2, 5, 3, 6]), [3, 2]); // aᵀ
      expect(Array.from(eg.matmul(at, b, { transposeA: true }).data())).toEqual([4, 5, 10, 11]);
      expect(Array.from(eg.matmul(at, bt, { transposeA: true, transposeB: true }).data())).toEqual([4, 5, 10, 11]);
    });
  });
});

describe("scope", () => {
  it("frees everything made inside except what is returned", () => {
    const base = live();
    const kept = eg.scope(() => {
      eg.tensor(new Float32Array(4), [2, 2]);
      eg.zeros([3, 3]);
      eg.sequential({ inputs: 2, seed: 3 }, [dense(1)]);
      return eg.zeros([1, 1]);
    });
    expect(kept.disposed).toBe(false);
    expect(live()).toBe(base + 1);
    kept.dispose();
    expect(live()).toBe(base);
  });

  it("keeps tensors returned in arrays and plain objects, and models too", () => {
    const base = live();
    const { pair, model } = eg.scope(() => {
      const a = eg.zeros([1, 1]);
      const b = eg.zeros([1, 1]);
      eg.zeros([1, 1]);
      const m = eg.sequential({ inputs: 1, seed: 1 }, [dense(1)]);
      return { pair: [a, b], model: m };
    });
    expect(live()).toBe(base + 3);
    pair.forEach((t) => t.dispose());
    model.dispose();
    expect(live()).toBe(base);
  });

  it("nests: an inner scope's returned tensor belongs to the outer scope", () => {
    const base = live();
    let inner!: Tensor;
    eg.scope(() => {
      inner = eg.scope(() => {
        eg.zeros([1, 1]);
        return eg.zeros([1, 1]);
      });
      expect(inner.disposed).toBe(false);
      expect(live()).toBe(base + 1);
    });
    expect(inner.disposed).toBe(true);
    expect(live()).toBe(base);
  });

  it("frees everything when fn throws, and rejects async functions", () => {
    const base = live();
    expect(() =>
      eg.scope(() => {
        eg.zeros([2, 2]);
        throw new Error("boom");
      }),
    ).toThrow("boom");
    expect(live()).toBe(base);
    expect(() => eg.scope((async () => eg.zeros([1, 1])) as never)).toThrow(InvalidArgumentError);
    expect(live()).toBe(base);
    expect(() => eg.scope(42 as never)).toThrow(/scope\(fn\)/);
  });

  it("tolerates tensors disposed inside the scope", () => {
    const base = live();
    eg.scope(() => {
      const t = eg.zeros([1, 1]);
      t.dispose();
    });
    expect(live()).toBe(base);
  });
});

describe("allocations per training step", () => {
  // A separate process so the V8 flag (1 MiB semi-space) and the heap belong to this check alone.
  it("after warm-up, 300,000 trainStep(x, y, lossOut) calls (batchNorm, AdamW) run no garbage collection and no wasm allocation", () => {
    const child = fileURLToPath(new URL("./alloc-child.mjs", import.meta.url));
    const r = spawnSync(process.execPath, ["--max-semi-space-size=1", child, "300000"], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim()) as { steps: number; gcs: number; wasmAllocations: number; heapGrowth: number };
    expect(out).toEqual({ steps: 300000, gcs: 0, wasmAllocations: 0, heapGrowth: 0 });
  });
});

describe("heap", () => {
  it("views are rebuilt after a big allocation grows memory", async () => {
    const abi = await loadAbi(await readFile(WASM));
    const h = tensorCreate(abi, 2, 2, "t");
    const at = abi.outU32(1) >>> 2;
    abi.f32.set([1, 2, 3, 4], at);
    const stale = abi.f32;
    const heapBefore = abi.stats().heapBytes;
    const big = tensorCreate(abi, 4096, 4096, "big"); // 64 MiB: more than the initial heap
    const heapAfter = abi.stats().heapBytes;
    expect(heapAfter).toBeGreaterThan(heapBefore);
    expect(stale.byteLength).toBe(0); // the old buffer is detached: exactly why views are never cached
    expect(abi.f32.byteLength).toBe(heapAfter);
    expect(Array.from(abi.f32.subarray(at, at + 4))).toEqual([1, 2, 3, 4]);
    abi.call("big", "eg_tensor_free", big);
    abi.call("t", "eg_tensor_free", h);
  });

  it("tensors and models keep working across memory growth", () => {
    const base = live();
    const t = eg.tensor(new Float32Array([1, 2, 3, 4]), [2, 2]);
    using m = eg.sequential({ inputs: 2, seed: 5 }, [dense(3, { activation: "tanh" }), dense(2)]);
    m.compile({ loss: "meanSquaredError", optimizer: sgd({ lr: 0.1 }), maxBatch: 4 });
    const before = m.predict(t);
    const heap = eg.memory().heapBytes;
    const big = eg.zeros([4096, 8192]); // 128 MiB
    expect(eg.memory().heapBytes).toBeGreaterThan(heap);
    expect(Array.from(t.data())).toEqual([1, 2, 3, 4]);
    expect(Array.from(m.predict(t))).toEqual(Array.from(before));
    expect(m.trainStep(t, new Float32Array([0, 1, 1, 0]))).toBeGreaterThan(0);
    big.dispose();
    t.dispose();
    m.dispose();
    expect(live()).toBe(base);
  });

  it("memory() reports consistent counters", () => {
    const m0 = eg.memory();
    const t = eg.zeros([256, 256]);
    const m1 = eg.memory();
    expect(m1.liveHandles).toBe(m0.liveHandles + 1);
    expect(m1.liveBytes).toBeGreaterThanOrEqual(m0.liveBytes + 256 * 256 * 4);
    expect(m1.allocations).toBeGreaterThan(m0.allocations);
    expect(m1.peakBytes).toBeGreaterThanOrEqual(m1.liveBytes);
    expect(m1.heapBytes % 65536).toBe(0);
    expect(m1.heapBytes).toBeGreaterThanOrEqual(m1.liveBytes);
    t.dispose();
    const m2 = eg.memory();
    expect(m2.liveHandles).toBe(m0.liveHandles);
    expect(m2.liveBytes).toBe(m0.liveBytes);
    expect(m2.leaked).toBe(m0.leaked);
  });
});

describe("FinalizationRegistry backstop", () => {
  const gc = (globalThis as { gc?: () => void }).gc;

  it.runIf(typeof gc === "function")("frees and counts tensors and models that were never disposed", async () => {
    const own = await init(WASM);
    // Warm up Rust's handle table so its capacity is not counted as live bytes below.
    own.scope(() => {
      for (let i = 0; i < 9; i++) own.zeros([1, 1]);
    });
    const base = own.memory();
    (() => {
      for (let i = 0; i < 8; i++) own.zeros([16, 16]);
      own.sequential({ inputs: 4, seed: 1 }, [dense(4)]);
    })();
    expect(own.memory().liveHandles).toBe(base.liveHandles + 9);
    for (let i = 0; i < 100 && own.memory().leaked < 9; i++) {
      gc!();
      await new Promise((r) => setTimeout(r, 10));
    }
    const after = own.memory();
    expect(after.leaked).toBe(9);
    expect(after.liveHandles).toBe(base.liveHandles);
    expect(after.liveBytes).toBe(base.liveBytes);
  });

  it.runIf(typeof gc === "function")("does not count disposed objects as leaks", async () => {
    const own = await init(WASM);
    (() => {
      for (let i = 0; i < 4; i++) own.zeros([4, 4]).dispose();
    })();
    for (let i = 0; i < 5; i++) {
      gc!();
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(own.memory().leaked).toBe(0);
  });
});
