//! Checkpoints: a model's architecture, compile settings and every piece of state a resumed run
//! needs (parameters, batch-norm running statistics, optimizer moments and step count, parameter
//! groups, clipping, mode, the RNG state and the last shuffle's permutation, the statistics
//! block), plus an opaque `extra` section the caller owns (ts/ stores its JSON there: learning
//! rate as f64, optimizer spec, schedule state).
//!
//! Why in Rust: the state lives in Rust's arenas, so one copy is read and written in place; the
//! parser is fuzzed natively (`cargo test`), and load is all-or-nothing by construction (a new
//! `Model` is built and checked completely, then swapped in). The price is module size: save,
//! parse and their two exports add ~18 kB to the optimised .wasm (183.7 → 201.5 kB measured on
//! HEAD f7b1ca5 plus this change), which is why `parse` is written for size (see `Reader`).
//!
//! Format v1, all little-endian:
//! ```text
//! header (32 bytes): magic "EGCKPT\r\n" (8) · version u32 (=1) · flags u32 (=0)
//!                    · payload length u64 · CRC-32 (IEEE, zlib's) of the payload u32 · reserved u32 (=0)
//! payload: inputs u32 · n_layers u32 · per layer [kind u32, outputs u32, activation u32,
//!          alpha f32, p0 f32 (batchNorm momentum | dropout rate), p1 f32 (batchNorm eps)]
//!          · training u32 · rng state u64[4]
//!          · params (len u32, f32…) · buffers (len u32, f32…) · stats (len u32, f32…)
//!          · compiled u32; if 1: loss u32 · max_batch u32 · optimizer kind u32 · hp (len u32, f32…)
//!            · clip_norm f32 · clip_value f32 · groups (2·count u32, [lr_scale f32, weight_decay f32]…)
//!            · step u64 · optimizer state (len u32, f32…) · permutation (len u32, u32…)
//!          · extra (len u32, bytes…)
//! ```
//! The paramGroups section is a u32 word count (2 per group) then the words. The payload must be
//! consumed exactly. Errors are InvalidArgument with messages starting
//! "checkpoint: " and one of the words magic / version / checksum / truncated / malformed, or
//! ShapeMismatch "checkpoint: architecture …" when loading into a model of another architecture.

use crate::error::{NnError, Result};
use crate::init::Init;
use crate::model::{LayerKind, LayerSpec, Model, ParamGroup};
use crate::optim::Optimizer;
use crate::rng::Rng;
use edgegrad_kernels::activation::Activation;
use edgegrad_kernels::loss::Loss;

/// The 8 bytes every checkpoint starts with.
pub const MAGIC: [u8; 8] = *b"EGCKPT\r\n";
/// The format version this build writes and reads.
pub const VERSION: u32 = 1;
/// Bytes before the payload.
pub const HEADER_BYTES: usize = 32;

/// CRC-32 (IEEE 802.3, reflected, as zlib's `crc32`).
pub fn crc32(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut c = 0xFFFF_FFFFu32;
    for &b in bytes {
        c = TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    c ^ 0xFFFF_FFFF
}

#[cold]
#[inline(never)]
fn bad(what: &str, why: &str) -> NnError {
    NnError::invalid(format!("checkpoint: {what}: {why}"))
}

/// A model-level validation error, relabelled as a malformed checkpoint.
#[cold]
#[inline(never)]
fn wrap(e: NnError) -> NnError {
    bad("malformed", &e.message)
}

/// The ABI hyper-parameter list of an optimizer (inverse of `Optimizer::from_abi`).
fn optimizer_hp(o: &Optimizer) -> Vec<f32> {
    let b = |v: bool| if v { 1.0 } else { 0.0 };
    match o {
        Optimizer::Sgd(h) => vec![h.lr, h.momentum, h.dampening, h.weight_decay, b(h.nesterov)],
        Optimizer::Adam(h) => vec![h.lr, h.beta1, h.beta2, h.eps, h.weight_decay, b(h.amsgrad)],
        Optimizer::Rmsprop(h) => vec![h.lr, h.alpha, h.eps, h.weight_decay, h.momentum, b(h.centered)],
        Optimizer::Adagrad(h) => vec![h.lr, h.lr_decay, h.weight_decay, h.initial_accumulator_value, h.eps],
    }
}

struct Writer(Vec<u8>);

impl Writer {
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f32(&mut self, v: f32) {
        self.u32(v.to_bits());
    }
    fn f32s(&mut self, v: &[f32]) {
        self.u32(v.len() as u32);
        for &x in v {
            self.f32(x);
        }
    }
}

/// Serialises `model` and the caller's `extra` bytes.
pub fn save(model: &Model, extra: &[u8]) -> Result<Vec<u8>> {
    if extra.len() > u32::MAX as usize {
        return Err(NnError::invalid("checkpoint: extra section exceeds 4 GiB"));
    }
    let p = model.params().len() + model.buffers().len() + model.stats().len() + model.optimizer_state().len();
    let mut w = Writer(Vec::new());
    w.0.try_reserve(HEADER_BYTES + 256 + 24 * model.layers().len() + 4 * p + 4 * model.permutation().len() + extra.len())
        .map_err(|_| NnError::new(crate::ErrorKind::OutOfMemory, "checkpoint: cannot allocate the checkpoint buffer"))?;
    w.0.resize(HEADER_BYTES, 0);
    w.u32(model.inputs() as u32);
    w.u32(model.layers().len() as u32);
    for l in model.layers() {
        w.u32(l.kind as u32);
        w.u32(l.outputs as u32);
        w.u32(l.activation as u32);
        w.f32(l.alpha);
        w.f32(if l.kind == LayerKind::Dropout { l.rate } else { l.momentum });
        w.f32(l.eps);
    }
    w.u32(model.training() as u32);
    for s in model.rng_state() {
        w.u64(s);
    }
    w.f32s(model.params());
    w.f32s(model.buffers());
    w.f32s(model.stats());
    match (model.optimizer(), model.loss()) {
        (Some(opt), Some(loss)) => {
            w.u32(1);
            w.u32(loss as u32);
            w.u32(model.max_batch() as u32);
            w.u32(opt.kind() as u32);
            w.f32s(&optimizer_hp(opt));
            let (cn, cv) = model.clipping();
            w.f32(cn);
            w.f32(cv);
            w.u32(2 * model.param_groups().len() as u32);
            for g in model.param_groups() {
                w.f32(g.lr_scale);
                w.f32(g.weight_decay);
            }
            w.u64(model.step());
            w.f32s(model.optimizer_state());
            w.u32(model.permutation().len() as u32);
            for &i in model.permutation() {
                w.u32(i);
            }
        }
        _ => w.u32(0),
    }
    w.u32(extra.len() as u32);
    w.0.extend_from_slice(extra);
    let payload_len = (w.0.len() - HEADER_BYTES) as u64;
    let crc = crc32(&w.0[HEADER_BYTES..]);
    let h = &mut w.0[..HEADER_BYTES];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&0u32.to_le_bytes());
    h[16..24].copy_from_slice(&payload_len.to_le_bytes());
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    h[28..32].copy_from_slice(&0u32.to_le_bytes());
    Ok(w.0)
}

/// Reads never fail: past the end they return zeros and set `short`, which `parse` checks once
/// before building anything. (Cold code in a module with a 200 kB budget: one check instead of
/// an error path per field keeps `parse` small.)
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
    short: bool,
}

#[cold]
#[inline(never)]
fn truncated() -> NnError {
    bad("truncated", "a section runs past the end of the payload")
}

#[cold]
#[inline(never)]
fn malformed(why: &str) -> NnError {
    bad("malformed", why)
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        match self.at.checked_add(n).filter(|&e| e <= self.b.len()) {
            Some(end) => {
                let s = &self.b[self.at..end];
                self.at = end;
                s
            }
            None => {
                self.short = true;
                self.at = self.b.len();
                &[]
            }
        }
    }
    fn u32(&mut self) -> u32 {
        match *self.take(4) {
            [a, b, c, d] => u32::from_le_bytes([a, b, c, d]),
            _ => 0,
        }
    }
    fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }
    fn f32(&mut self) -> f32 {
        f32::from_bits(self.u32())
    }
    /// A length-prefixed run of 4-byte words, checked against the bytes left before anything
    /// is allocated (a forged length cannot ask for gigabytes).
    fn words(&mut self) -> &'a [u8] {
        let n = self.u32() as usize;
        self.take(n.saturating_mul(4))
    }
}

/// Little-endian 4-byte words as u32.
fn u32s(b: &[u8]) -> Vec<u32> {
    b.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// Little-endian 4-byte words as f32.
fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// A checkpoint parsed and checked, not yet applied.
pub struct Parsed {
    /// The model with all state restored.
    pub model: Model,
    /// Byte range of the extra section within the checkpoint.
    pub extra: core::ops::Range<usize>,
}

/// Checks magic, version, length and checksum; returns the payload.
fn payload(bytes: &[u8]) -> Result<&[u8]> {
    if bytes.len() < 8 || bytes[..8] != MAGIC {
        return Err(bad("magic", "not an edgegrad checkpoint (bad magic number)"));
    }
    if bytes.len() < HEADER_BYTES {
        return Err(bad("truncated", "shorter than the 32-byte header"));
    }
    let u32_at = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let version = u32_at(8);
    if version != VERSION {
        return Err(bad("version", &format!("format version {version} is not supported (this build reads version {VERSION})")));
    }
    if u32_at(12) != 0 || u32_at(28) != 0 {
        return Err(malformed("reserved header fields are not 0"));
    }
    let len = u64::from(u32_at(16)) | (u64::from(u32_at(20)) << 32);
    let have = (bytes.len() - HEADER_BYTES) as u64;
    if len != have {
        let why = if len > have { "truncated" } else { "malformed" };
        return Err(bad(why, &format!("header says {len} payload bytes, found {have}")));
    }
    let payload = &bytes[HEADER_BYTES..];
    if u32_at(24) != crc32(payload) {
        return Err(bad("checksum", "CRC-32 mismatch: the checkpoint is corrupt"));
    }
    Ok(payload)
}

/// Parses and checks a checkpoint completely and builds the model it describes. Every value
/// goes through the same validation as user input (a checkpoint that passed the CRC may still
/// have been written by another program).
pub fn parse(bytes: &[u8]) -> Result<Parsed> {
    let payload = payload(bytes)?;
    let mut r = Reader { b: payload, at: 0, short: false };
    let inputs = r.u32() as usize;
    let n_layers = r.u32() as usize;
    if n_layers == 0 || n_layers > 4096 {
        return Err(malformed("layer count out of range"));
    }
    let mut specs = Vec::with_capacity(n_layers);
    // Bound the parameter count by what the payload can hold before Model::new allocates.
    let (mut width, mut p_total) = (inputs, 0usize);
    for _ in 0..n_layers {
        let (kind, outputs, act) = (r.u32(), r.u32() as usize, r.u32());
        let (alpha, p0, p1) = (r.f32(), r.f32(), r.f32());
        let kind = LayerKind::from_u32(kind).ok_or_else(|| malformed("unknown layer kind"))?;
        let activation = Activation::from_u32(act).ok_or_else(|| malformed("unknown activation"))?;
        let dense = kind == LayerKind::Dense;
        if dense {
            p_total = width.checked_mul(outputs).and_then(|k| p_total.checked_add(k)?.checked_add(outputs)).ok_or_else(|| malformed("parameter count overflows"))?;
        } else if outputs != width {
            return Err(malformed("a batchNorm or dropout layer changes the width"));
        }
        width = outputs;
        let (units, p0) = if dense { (outputs, 0.0) } else { (0, p0) };
        specs.push(LayerSpec { kind, units, activation, alpha, init: Init::Zeros, p0, p1 });
    }
    let training = r.u32();
    let rng_state = [r.u64(), r.u64(), r.u64(), r.u64()];
    let (params, buffers, stats) = (r.words(), r.words(), r.words());
    let compiled = r.u32();
    let (mut loss, mut max_batch, mut kind, mut hp, mut clip, mut groups, mut step, mut opt_state, mut perm) = (0, 0, 0, &[][..], (0.0, 0.0), &[][..], 0, &[][..], &[][..]);
    if compiled == 1 {
        (loss, max_batch, kind, hp) = (r.u32(), r.u32() as usize, r.u32(), r.words());
        clip = (r.f32(), r.f32());
        (groups, step, opt_state, perm) = (r.words(), r.u64(), r.words(), r.words());
    }
    let extra_len = r.u32() as usize;
    let extra = r.take(extra_len);
    if r.short || p_total > payload.len() / 4 {
        return Err(truncated());
    }
    if r.at != payload.len() {
        return Err(malformed("unexpected bytes after the last section"));
    }
    if training > 1 || compiled > 1 || groups.len() % 8 != 0 {
        return Err(malformed("a flag is not 0 or 1, or paramGroups has an odd word count"));
    }
    let rng = Rng::from_state(rng_state).ok_or_else(|| malformed("RNG state is all zero"))?;
    let mut model = Model::new(inputs, &specs, 0).map_err(wrap)?;
    model.set_training(training == 1);
    if compiled == 1 {
        let loss = Loss::from_u32(loss).ok_or_else(|| malformed("unknown loss"))?;
        let optimizer = Optimizer::from_abi(kind, &f32s(hp)).map_err(wrap)?;
        let groups: Vec<ParamGroup> = f32s(groups).chunks_exact(2).map(|c| ParamGroup { lr_scale: c[0], weight_decay: c[1] }).collect();
        model.compile(loss, optimizer, max_batch).map_err(wrap)?;
        model.set_param_groups(&groups).map_err(wrap)?;
        model.set_clipping(clip.0, clip.1).map_err(wrap)?;
    }
    model.restore_state(&f32s(params), &f32s(buffers), &f32s(stats), &f32s(opt_state), step, rng, u32s(perm)).map_err(wrap)?;
    let start = HEADER_BYTES + r.at - extra.len();
    Ok(Parsed { model, extra: start..start + extra.len() })
}

/// Whether `a` and `b` have the same architecture (inputs and every layer's kind, widths,
/// activation and hyper-parameters), or a ShapeMismatch naming the first difference.
pub fn same_architecture(a: &Model, b: &Model) -> Result<()> {
    let arch = |why: String| Err(NnError::shape(format!("checkpoint: architecture: {why}")));
    if a.inputs() != b.inputs() {
        return arch(format!("the model takes {} inputs, the checkpoint {}", a.inputs(), b.inputs()));
    }
    if a.layers().len() != b.layers().len() {
        return arch(format!("the model has {} layers, the checkpoint {}", a.layers().len(), b.layers().len()));
    }
    for (l, (x, y)) in a.layers().iter().zip(b.layers()).enumerate() {
        let key = |v: &crate::model::Layer| (v.kind, v.inputs, v.outputs, v.activation, v.alpha.to_bits(), v.momentum.to_bits(), v.eps.to_bits(), v.rate.to_bits());
        if key(x) != key(y) {
            let d = |v: &crate::model::Layer| format!("{} {}→{}", v.kind.name(), v.inputs, v.outputs);
            return arch(format!("layers[{l}] is {} in the model but {} in the checkpoint (or differs in activation or hyper-parameters)", d(x), d(y)));
        }
    }
    Ok(())
}
