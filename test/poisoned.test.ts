// A trap poisons the instance (issue 6): when an export traps (WebAssembly.RuntimeError), Rust
// state may be half-updated, so ts/abi.ts marks the instance poisoned and every later call on it
// throws PoisonedError; init() gives a fresh instance, where checkpoint bytes saved before load.
//
// How the trap is provoked: no public call can reach one (every argument is validated on both
// sides of the ABI; eg_model_set_params even range-checks its source pointer), so the test builds
// its Edgegrad over an Abi it holds and hands eg_free a block address 4 KiB below the 4 GiB
// limit, far beyond the linear memory: the allocator reads that block's header and wasm traps
// with "memory access out of bounds". (eg_free trusts its caller: ts/abi.ts is the only one.)
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { loadAbi } from "../ts/abi.js";
import { dense, Edgegrad, EdgegradError, init, PoisonedError, sgd } from "../ts/node.js";
import { bitsOf, arraysOf, thrown, WASM } from "./helpers.js";

describe("poisoned instance", () => {
  it("a trap poisons the instance, later calls throw PoisonedError, and a fresh init() loads the saved checkpoint", async () => {
    const abi = await loadAbi(await readFile(WASM));
    const eg = new Edgegrad(abi);
    const x = Float32Array.from({ length: 8 * 3 }, (_, i) => Math.sin(i));
    const y = Float32Array.from({ length: 8 * 2 }, (_, i) => Math.cos(i));
    const model = eg.sequential({ inputs: 3, seed: 7 }, [dense(4, { activation: "tanh" }), dense(2)]);
    model.compile({ loss: "meanSquaredError", optimizer: sgd({ lr: 0.1, momentum: 0.9 }), maxBatch: 8 });
    model.trainStep(x, y);
    const saved = model.save();
    const weights = bitsOf(arraysOf(model.getWeights()));
    const tensor = eg.tensor(new Float32Array(4), [2, 2]);

    // The trap itself: a raw export reading far beyond the linear memory.
    const trap = thrown(() => abi.free(0xffff_f000, 64));
    expect(trap).toBeInstanceOf(PoisonedError);
    expect(trap).toBeInstanceOf(EdgegradError);
    expect((trap as Error & { cause?: unknown }).cause).toBeInstanceOf(WebAssembly.RuntimeError);
    expect(trap.message).toMatch(/^eg_free trapped \(.*out of bounds.*\); .*call init\(\) for a fresh instance/);
    expect(abi.poisoned).toBe(true);

    // Every later call, on the instance, its models and its tensors, throws the typed error.
    await expect(model.fit(x, y, { epochs: 1, batchSize: 4 })).rejects.toBeInstanceOf(PoisonedError);
    const later: [string, () => unknown][] = [
      ["trainStep", () => model.trainStep(x, y)],
      ["predict", () => model.predict(x)],
      ["getWeights", () => model.getWeights()],
      ["save", () => model.save()],
      ["load", () => model.load(saved)],
      ["memory", () => eg.memory()],
      ["tensor", () => eg.tensor(new Float32Array(4), [2, 2])],
      ["sequential", () => eg.sequential({ inputs: 3, seed: 1 }, [dense(2)])],
      ["eg.load", () => eg.load(saved)],
      ["tensor.data", () => tensor.data()],
      ["tensor.dispose", () => tensor.dispose()],
      ["dispose", () => model.dispose()],
    ];
    for (const [name, call] of later) {
      const e = thrown(call);
      expect(e, name).toBeInstanceOf(PoisonedError);
      expect(e.message, name).toMatch(/^the wasm instance trapped earlier \(eg_free: .*\), so its memory may be inconsistent; call init\(\) for a fresh instance/);
    }

    // A fresh instance works, and the bytes saved before the trap restore the same model there.
    const fresh = await init(WASM);
    const base = fresh.memory();
    const restored = fresh.load(saved);
    expect(bitsOf(arraysOf(restored.getWeights()))).toEqual(weights);
    expect(Number.isFinite(restored.trainStep(x, y))).toBe(true);
    restored.dispose();
    expect(fresh.memory().liveHandles).toBe(base.liveHandles);
  });
});
