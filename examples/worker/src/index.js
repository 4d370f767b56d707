// An edge endpoint that learns online: every POST /learn trains the model on the posted samples,
// and the weights live in Durable Object storage, so a restart (or a move to another machine)
// loses nothing. One Durable Object ("default") owns the model; the Worker forwards requests to it.
//
//   POST /learn    {"samples": [{"x": [0.3, -0.8], "y": 1}, ...]}  -> {"loss", "samples", "steps"}
//   POST /predict  {"x": [[0.3, -0.8], ...]}                        -> {"classes", "probabilities"}
//   GET  /state                                                      -> {"samples", "steps", "fingerprint"}
//
// Workers cannot compile WebAssembly from bytes: edgegrad.wasm is imported as a module (wrangler
// compiles it with the Worker) and handed to init().
import { DurableObject } from "cloudflare:workers";
import { dense, EdgegradError, init, sgd } from "edgegrad";
import wasm from "edgegrad/edgegrad.wasm";

const INPUTS = 2;
const CLASSES = 2;
const MAX_BATCH = 64;
const MAX_SAMPLES = 4096; // per request

/** One wasm instance per isolate, shared by every object in it. */
let edgegrad;

const layers = () => [dense(16, { activation: "relu" }), dense(16, { activation: "relu" }), dense(CLASSES)];

/** FNV-1a over the weights' Float32 bits: a short name for "these exact weights". */
function fingerprint(weights) {
  let h = 0x811c9dc5;
  for (const { kernel, bias } of weights) {
    for (const a of [kernel, bias]) {
      for (const bits of new Uint32Array(a.buffer, a.byteOffset, a.length)) h = Math.imul(h ^ bits, 0x01000193);
    }
  }
  return (h >>> 0).toString(16).padStart(8, "0");
}

class BadRequest extends Error {}

/** Rows of `n` numbers from a JSON array of arrays, as one row-major Float32Array. */
function rows(list, n, name) {
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_SAMPLES) {
    throw new BadRequest(`${name}: expected 1..${MAX_SAMPLES} rows`);
  }
  const out = new Float32Array(list.length * n);
  list.forEach((row, i) => {
    if (!Array.isArray(row) || row.length !== n) throw new BadRequest(`${name}[${i}]: expected ${n} numbers`);
    out.set(row, i * n);
  });
  return out;
}

export class Learner extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    // Requests wait until the model exists and holds the stored weights.
    ctx.blockConcurrencyWhile(async () => {
      edgegrad ??= init(wasm);
      const eg = await edgegrad;
      this.model = eg.sequential({ inputs: INPUTS, seed: 1 }, layers());
      this.model.compile({ loss: "softmaxCrossEntropy", optimizer: sgd({ lr: 0.3 }), maxBatch: MAX_BATCH });
      const saved = await ctx.storage.get(["weights", "samples"]);
      if (saved.has("weights")) this.model.setWeights(saved.get("weights"));
      this.samples = saved.get("samples") ?? 0;
    });
  }

  async fetch(request) {
    const { pathname } = new URL(request.url);
    try {
      if (request.method === "POST" && pathname === "/learn") return Response.json(await this.learn(await request.json()));
      if (request.method === "POST" && pathname === "/predict") return Response.json(this.predict(await request.json()));
      if (request.method === "GET" && pathname === "/state") return Response.json(this.state());
      return Response.json({ error: "not found" }, { status: 404 });
    } catch (e) {
      if (e instanceof BadRequest || e instanceof EdgegradError || e instanceof SyntaxError) {
        return Response.json({ error: e.message }, { status: 400 });
      }
      throw e;
    }
  }

  /** Trains on the posted samples in batches of MAX_BATCH, then stores the new weights. */
  async learn(body) {
    const samples = body?.samples;
    const x = rows(samples?.map((s) => s?.x), INPUTS, "samples[].x");
    const y = Int32Array.from(samples, (s) => s.y); // class ids; edgegrad rejects anything else
    let lossSum = 0;
    for (let start = 0; start < y.length; start += MAX_BATCH) {
      const end = Math.min(start + MAX_BATCH, y.length);
      lossSum += this.model.trainStep(x.subarray(start * INPUTS, end * INPUTS), y.subarray(start, end)) * (end - start);
    }
    this.samples += y.length;
    // getWeights() returns copies; storage keeps Float32Arrays as they are (structured clone).
    await this.ctx.storage.put({ weights: this.model.getWeights(), samples: this.samples });
    return { loss: lossSum / y.length, samples: this.samples, steps: this.model.step };
  }

  /** Class and softmax probabilities for each posted point. */
  predict(body) {
    const logits = this.model.predict(rows(body?.x, INPUTS, "x"));
    const classes = [];
    const probabilities = [];
    for (let r = 0; r < logits.length / CLASSES; r++) {
      const row = Array.from(logits.subarray(r * CLASSES, (r + 1) * CLASSES));
      const max = Math.max(...row);
      const e = row.map((v) => Math.exp(v - max));
      const sum = e.reduce((a, b) => a + b, 0);
      probabilities.push(e.map((v) => v / sum));
      classes.push(row.indexOf(max));
    }
    return { classes, probabilities };
  }

  state() {
    return { samples: this.samples, steps: this.model.step, fingerprint: fingerprint(this.model.getWeights()) };
  }
}

export default {
  async fetch(request, env) {
    return env.LEARNER.get(env.LEARNER.idFromName("default")).fetch(request);
  },
};
