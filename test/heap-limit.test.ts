// The heap limit (issue 6): beyond `setHeapLimit` creating a tensor, model or training arena is
// an OutOfMemoryError that changes nothing, and the instance keeps working for smaller models.
import { beforeAll, expect, it } from "vitest";
import { adam, dense, init, InvalidArgumentError, OutOfMemoryError, type Edgegrad } from "../ts/node.js";
import { WASM } from "./helpers.js";


let eg: Edgegrad;
beforeAll(async () => {
  eg = await init(WASM);
});

it("defaults to unlimited (96 MiB in Workers); beyond the limit is OutOfMemoryError, after which smaller models still train", () => {
  const previous = eg.setHeapLimit(8 << 20);
  try {
    expect(previous).toBe(0xffff_ffff);
    const base = eg.memory().liveHandles;
    expect(() => eg.zeros([4096, 1024])).toThrow(OutOfMemoryError); // 16 MiB
    expect(() => eg.sequential({ inputs: 2048, seed: 1 }, [dense(2048)])).toThrow(OutOfMemoryError);
    const m = eg.sequential({ inputs: 512, seed: 1 }, [dense(512), dense(10)]); // ~1 MiB of parameters
    const before = m.save();
    expect(() => m.compile({ loss: "meanSquaredError", optimizer: adam(), maxBatch: 8192 })).toThrow(OutOfMemoryError);
    expect(Buffer.from(m.save()).equals(Buffer.from(before))).toBe(true);
    expect(eg.memory().liveHandles).toBe(base + 1);
    m.compile({ loss: "meanSquaredError", optimizer: adam(), maxBatch: 16 });
    const loss = m.trainStep(new Float32Array(16 * 512).fill(0.1), new Float32Array(16 * 10));
    expect(Number.isFinite(loss)).toBe(true);
    m.dispose();
    expect(() => eg.setHeapLimit(1000)).toThrow(InvalidArgumentError);
  } finally {
    eg.setHeapLimit(previous);
  }
});
