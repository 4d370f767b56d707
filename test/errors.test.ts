// Error classes and argument validation outside the model: every bad argument throws the typed
// error whose message names the argument, before anything reaches wasm.
import { beforeAll, describe, expect, it } from "vitest";
import { errorForStatus, Status } from "../ts/errors.js";
import {
  AbiError,
  dense,
  DisposedError,
  EdgegradError,
  init,
  InternalError,
  InvalidArgumentError,
  NonFiniteError,
  OutOfMemoryError,
  sgd,
  ShapeError,
  StateError,
  STATUS_NAMES,
  type Edgegrad,
} from "../ts/node.js";
import { WASM } from "./helpers.js";


let eg: Edgegrad;
beforeAll(async () => {
  eg = await init(WASM);
});

/** Runs fn and returns what it threw (failing the test if it did not throw). */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected a throw");
}

describe("error classes", () => {
  const classes = [
    [InvalidArgumentError, "invalidArgument"],
    [ShapeError, "shapeMismatch"],
    [DisposedError, "disposedHandle"],
    [OutOfMemoryError, "outOfMemory"],
    [StateError, "invalidState"],
    [NonFiniteError, "nonFinite"],
    [InternalError, "internal"],
    [AbiError, "internal"],
  ] as const;

  for (const [Cls, status] of classes) {
    it(`${Cls.name} is an EdgegradError and an Error with status "${status}"`, () => {
      const e = new Cls("x: bad");
      expect(e).toBeInstanceOf(Cls);
      expect(e).toBeInstanceOf(EdgegradError);
      expect(e).toBeInstanceOf(Error);
      expect(e.name).toBe(Cls.name);
      expect(e.status).toBe(status);
      expect(e.message).toBe("x: bad");
      expect(String(e)).toBe(`${Cls.name}: x: bad`);
    });
  }

  it("the status table and name list are one consistent source", () => {
    expect(STATUS_NAMES.length).toBe(8);
    STATUS_NAMES.forEach((name, code) => expect(Status[name]).toBe(code));
  });

  it("maps every non-zero status code to its class (and unknown codes to AbiError)", () => {
    for (let code = 1; code < STATUS_NAMES.length; code++) {
      const e = errorForStatus(code, "m");
      expect(e.status).toBe(STATUS_NAMES[code]);
      expect(e.message).toBe("m");
    }
    expect(errorForStatus(Status.shapeMismatch, "m")).toBeInstanceOf(ShapeError);
    expect(errorForStatus(Status.disposedHandle, "m")).toBeInstanceOf(DisposedError);
    expect(errorForStatus(99, "m")).toBeInstanceOf(AbiError);
  });
});

describe("argument validation names the argument", () => {
  const f32 = (n: number) => new Float32Array(n);
  const cases: [string, () => unknown, new (m: string) => EdgegradError, RegExp][] = [
    ["tensor data type", () => eg.tensor(new Float64Array(4) as never, [2, 2]), InvalidArgumentError, /^tensor\(data\): expected a Float32Array, got Float64Array\(4\)/],
    ["tensor plain array", () => eg.tensor([1, 2] as never, [1, 2]), InvalidArgumentError, /tensor\(data\)/],
    ["tensor length", () => eg.tensor(f32(3), [2, 2]), ShapeError, /^tensor\(data\): 3 values/],
    ["tensor shape not a pair", () => eg.tensor(f32(4), [4] as never), InvalidArgumentError, /^tensor\(shape\)/],
    ["tensor fractional rows", () => eg.tensor(f32(4), [2.5, 2]), InvalidArgumentError, /^tensor\(shape\)\[0\] \(rows\): must be an integer >= 1, got 2\.5/],
    ["tensor zero cols", () => eg.tensor(f32(0), [1, 0]), InvalidArgumentError, /^tensor\(shape\)\[1\] \(cols\)/],
    ["zeros negative", () => eg.zeros([-1, 2]), InvalidArgumentError, /^zeros\(shape\)\[0\]/],
    ["zeros NaN", () => eg.zeros([NaN, 2]), InvalidArgumentError, /^zeros\(shape\)\[0\]/],
    ["zeros too large for u32", () => eg.zeros([2 ** 32, 1]), InvalidArgumentError, /^zeros\(shape\)\[0\]/],
    ["matmul non-tensor", () => eg.matmul(f32(1) as never, eg.zeros([1, 1])), InvalidArgumentError, /^matmul\(a\)/],
    ["matmul inner dims", () => eg.matmul(eg.zeros([2, 3]), eg.zeros([2, 3])), ShapeError, /^matmul\(b\): inner dimensions differ/],
    ["matmul option type", () => eg.matmul(eg.zeros([1, 1]), eg.zeros([1, 1]), { transposeA: 1 as never }), InvalidArgumentError, /^matmul\(opts\.transposeA\)/],
    ["dense units 0", () => dense(0), InvalidArgumentError, /^dense\(units\)/],
    ["dense units fractional", () => dense(1.5), InvalidArgumentError, /^dense\(units\)/],
    ["dense unknown activation", () => dense(2, { activation: "swish" as never }), InvalidArgumentError, /^dense\(opts\.activation\): unknown value "swish"; expected one of "identity"/],
    ["dense alpha NaN", () => dense(2, { activation: "leakyRelu", alpha: NaN }), InvalidArgumentError, /^dense\(opts\.alpha\)/],
    ["dense unknown init", () => dense(2, { init: "orthogonal" as never }), InvalidArgumentError, /^dense\(opts\.init\)/],
    ["dense opts not an object", () => dense(2, "relu" as never), InvalidArgumentError, /^dense\(opts\)/],
    ["sgd lr NaN", () => sgd({ lr: NaN }), InvalidArgumentError, /^sgd\(opts\.lr\): must be a finite number >= 0, got NaN/],
    ["sgd lr Infinity", () => sgd({ lr: Infinity }), InvalidArgumentError, /^sgd\(opts\.lr\)/],
    ["sgd lr negative", () => sgd({ lr: -0.1 }), InvalidArgumentError, /^sgd\(opts\.lr\)/],
    ["sgd lr missing", () => sgd({} as never), InvalidArgumentError, /^sgd\(opts\.lr\)/],
    ["sequential inputs", () => eg.sequential({ inputs: 0 }, [dense(1)]), InvalidArgumentError, /^sequential\(opts\.inputs\)/],
    ["sequential seed", () => eg.sequential({ inputs: 1, seed: -1 }, [dense(1)]), InvalidArgumentError, /^sequential\(opts\.seed\)/],
    ["sequential seed fractional", () => eg.sequential({ inputs: 1, seed: 0.5 }, [dense(1)]), InvalidArgumentError, /^sequential\(opts\.seed\)/],
    ["sequential no layers", () => eg.sequential({ inputs: 1 }, []), InvalidArgumentError, /^sequential\(layers\)/],
    ["sequential not a layer", () => eg.sequential({ inputs: 1 }, [dense(2), { units: 3 } as never]), InvalidArgumentError, /^sequential\(layers\[1\]\)/],
    ["sequential hand-written bad activation", () => eg.sequential({ inputs: 1 }, [{ ...dense(2), activation: "softplus" as never }]), InvalidArgumentError, /^sequential\(layers\[0\]\)\.activation/],
  ];

  for (const [name, fn, Cls, message] of cases) {
    it(name, () => {
      const before = eg.memory().liveHandles;
      const e = thrown(fn);
      expect(e).toBeInstanceOf(Cls);
      expect(e.message).toMatch(message);
      // tensors made as arguments above are cleaned up by their own test; nothing new leaked from the failing call
      expect(eg.memory().liveHandles).toBeLessThanOrEqual(before + 2);
    });
  }

  it("errors raised in Rust carry its message, prefixed with the public call", () => {
    using m = eg.sequential({ inputs: 2, seed: 1 }, [dense(2)]);
    m.compile({ loss: "meanSquaredError", optimizer: sgd({ lr: 0.1 }), maxBatch: 4 });
    const e = thrown(() => m.trainStep(new Float32Array([1, NaN]), new Float32Array([0, 0])));
    expect(e).toBeInstanceOf(NonFiniteError);
    expect(e.message).toBe("trainStep: x: non-finite value at row 0, column 1");
  });

  it("a failing constructor leaks nothing", () => {
    const attempt = () => {
      thrown(() => eg.sequential({ inputs: 1 }, [dense(2), dense(0 as never)]));
      thrown(() => eg.tensor(new Float32Array(3), [2, 2]));
      // rejected by Rust after the layer records were staged: the staging block is freed too
      expect(thrown(() => eg.sequential({ inputs: 200_000 }, [dense(200_000)]))).toBeInstanceOf(ShapeError);
      expect(thrown(() => eg.sequential({ inputs: 30_000 }, [dense(30_000)]))).toBeInstanceOf(OutOfMemoryError);
      expect(thrown(() => eg.zeros([30_000, 30_000]))).toBeInstanceOf(OutOfMemoryError);
    };
    attempt(); // warm-up: Rust keeps the longest last-error message's buffer
    const before = eg.memory();
    attempt();
    const after = eg.memory();
    expect(after.liveHandles).toBe(before.liveHandles);
    expect(after.liveBytes).toBe(before.liveBytes);
  });
});
