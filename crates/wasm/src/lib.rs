//! edgegrad-wasm: the WebAssembly boundary, and the only crate with `extern "C"`.
//!
//! Every export takes and returns plain numbers (u32 handles, pointers and dims, f32
//! hyper-parameters, i32 status). Fallible exports return a `Status`; after a failure
//! `eg_last_error_ptr/len` hold a UTF-8 message naming the bad argument. Every argument is
//! checked before work starts, so a failed call changes nothing, and bad input never panics
//! (a panic would trap the instance). Out-parameters go to a caller-owned, 8-aligned region of
//! `OUT_BYTES` bytes (`out`), written only on success. The contract is mirrored by ts/abi.ts.

mod alloc;
mod handles;
mod status;

use core::cell::RefCell;
use edgegrad_nn::kernels::activation::Activation;
use edgegrad_nn::kernels::gemm::{gemm_nn, gemm_nt, gemm_tn, gemm_scratch_len};
use edgegrad_nn::kernels::loss::Loss;
use edgegrad_nn::{Init, LayerKind, LayerSpec, Model, Optimizer, OptimizerKind, ParamGroup, Role};
use handles::{Object, Table, Tensor};
use status::{CallResult, Failure, Status};

#[global_allocator]
static GLOBAL: alloc::CountingAlloc = alloc::CountingAlloc;

/// Bumped whenever an export's meaning changes; ts/abi.ts refuses a module with another value.
pub const ABI_VERSION: u32 = 2;
/// Bytes of the out-parameter region every call with `out` may write.
pub const OUT_BYTES: usize = 64;
/// Words per layer record in `eg_model_create`'s spec: kind, units, activation, alpha bits,
/// init, p0 bits, p1 bits, reserved.
const LAYER_SPEC_WORDS: usize = 8;

#[derive(Default)]
struct State {
    table: Table,
    last_error: String,
    last_error_at: Option<edgegrad_nn::ErrorAt>,
    scratch: Vec<f32>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// Runs `f` on the global state and turns its result into a status code.
fn call(f: impl FnOnce(&mut State) -> CallResult<()>) -> i32 {
    STATE.with(|cell| {
        let mut state = cell.borrow_mut();
        match f(&mut state) {
            Ok(()) => Status::Ok as i32,
            Err(Failure { status, message, at }) => {
                state.last_error.clear();
                state.last_error.push_str(&message);
                state.last_error_at = at;
                status as i32
            }
        }
    })
}

fn invalid(message: impl Into<String>) -> Failure {
    Failure::new(Status::InvalidArgument, message)
}

/// Bytes of linear memory right now.
fn memory_bytes() -> usize {
    #[cfg(target_arch = "wasm32")]
    {
        core::arch::wasm32::memory_size(0) * 65536
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        usize::MAX
    }
}

/// Checks that the caller's region [ptr, ptr+bytes) lies in linear memory with `align`.
fn region(ptr: u32, bytes: usize, align: usize, what: &str) -> CallResult<*mut u8> {
    let start = ptr as usize;
    let in_bounds = start.checked_add(bytes).is_some_and(|end| end <= memory_bytes());
    if ptr == 0 || !start.is_multiple_of(align) || !in_bounds {
        return Err(invalid(format!("{what}: {bytes} bytes at {ptr:#x} are not a valid {align}-aligned region")));
    }
    Ok(start as *mut u8)
}

/// The caller's out-parameter region.
struct Out(*mut u8);

impl Out {
    fn new(out: u32) -> CallResult<Out> {
        region(out, OUT_BYTES, 8, "out").map(Out)
    }
    fn u32(&self, index: usize, value: u32) {
        assert!(index < OUT_BYTES / 4);
        // SAFETY: `new` checked that OUT_BYTES bytes at self.0 are in linear memory and
        // 8-aligned; index < OUT_BYTES/4 keeps the write inside.
        unsafe { (self.0 as *mut u32).add(index).write(value) }
    }
    fn f32(&self, index: usize, value: f32) {
        self.u32(index, value.to_bits())
    }
    fn f64(&self, index: usize, value: f64) {
        assert!(index < OUT_BYTES / 8);
        // SAFETY: as in `u32`, with index < OUT_BYTES/8 and 8-byte alignment checked in `new`.
        unsafe { (self.0 as *mut f64).add(index).write(value) }
    }
}

/// Pointer of a slice as the u32 address JS sees.
fn addr<T>(s: &[T]) -> u32 {
    s.as_ptr() as usize as u32
}

/// A zero-filled Vec, or OutOfMemory.
fn zeroed(len: usize, what: &str) -> CallResult<Vec<f32>> {
    edgegrad_nn::error::alloc_f32(len, what).map_err(Failure::from)
}

// ---------------------------------------------------------------------------------------------
// Module-level exports

/// The ABI version this module implements.
#[no_mangle]
pub extern "C" fn eg_abi_version() -> u32 {
    ABI_VERSION
}

/// Allocates `bytes` (8-aligned) for the caller; 0 when out of memory or `bytes` is 0.
#[no_mangle]
pub extern "C" fn eg_alloc(bytes: u32) -> u32 {
    if bytes == 0 {
        return 0;
    }
    match std::alloc::Layout::from_size_align(bytes as usize, 8) {
        // SAFETY: the layout has non-zero size.
        Ok(layout) => unsafe { std::alloc::alloc(layout) as usize as u32 },
        Err(_) => 0,
    }
}

/// Frees a region from `eg_alloc` with the same `bytes`.
#[no_mangle]
pub extern "C" fn eg_free(ptr: u32, bytes: u32) {
    if ptr == 0 || bytes == 0 {
        return;
    }
    if let Ok(layout) = std::alloc::Layout::from_size_align(bytes as usize, 8) {
        // SAFETY: the caller (ts/abi.ts, the only one) passes back exactly what eg_alloc gave it.
        unsafe { std::alloc::dealloc(ptr as usize as *mut u8, layout) }
    }
}

/// Sets the heap limit: creating a tensor, model arena or training arena that would take the
/// allocator's live bytes above `bytes` fails with OutOfMemory (other, transient allocations are
/// not refused). Returns the previous limit (u32::MAX = unlimited, the default; ts/workerd.ts
/// sets 96 MiB in Cloudflare Workers).
#[no_mangle]
pub extern "C" fn eg_set_heap_limit(bytes: u32) -> u32 {
    let previous = alloc::limit().min(u32::MAX as usize) as u32;
    alloc::set_limit(bytes as usize);
    previous
}

/// Address of the last failure's UTF-8 message.
#[no_mangle]
pub extern "C" fn eg_last_error_ptr() -> u32 {
    STATE.with(|s| s.borrow().last_error.as_ptr() as usize as u32)
}

/// Layer the last failure concerns (a non-finite loss or gradient), or -1 when it names none.
#[no_mangle]
pub extern "C" fn eg_last_error_layer() -> i32 {
    STATE.with(|s| s.borrow().last_error_at.map_or(-1, |a| a.layer as i32))
}

/// Parameter role (0 kernel, 1 bias, 2 gamma, 3 beta) the last failure concerns, or -1.
#[no_mangle]
pub extern "C" fn eg_last_error_role() -> i32 {
    STATE.with(|s| s.borrow().last_error_at.and_then(|a| a.role).map_or(-1, |r| r as i32))
}

/// Byte length of the last failure's message.
#[no_mangle]
pub extern "C" fn eg_last_error_len() -> u32 {
    STATE.with(|s| s.borrow().last_error.len() as u32)
}

/// Writes the name of enum `kind`'s member `id` (kind 0 status, 1 activation, 2 loss,
/// 3 optimizer, 4 initialiser, 5 layer kind, 6 parameter role) to out_ptr; returns its byte
/// length, or -1 when unknown or longer than `cap`.
#[no_mangle]
pub extern "C" fn eg_enum_name(kind: u32, id: u32, out_ptr: u32, cap: u32) -> i32 {
    let name = match kind {
        0 => Status::ALL.get(id as usize).map(|s| s.name()),
        1 => Activation::from_u32(id).map(Activation::name),
        2 => Loss::from_u32(id).map(Loss::name),
        3 => OptimizerKind::from_u32(id).map(OptimizerKind::name),
        4 => Init::from_u32(id).map(Init::name),
        5 => LayerKind::from_u32(id).map(LayerKind::name),
        6 => Role::from_u32(id).map(Role::name),
        _ => None,
    };
    let Some(name) = name else { return -1 };
    if name.len() > cap as usize {
        return -1;
    }
    let Ok(dst) = region(out_ptr, name.len(), 1, "out_ptr") else { return -1 };
    // SAFETY: `region` checked that name.len() bytes at dst are inside linear memory.
    unsafe { core::ptr::copy_nonoverlapping(name.as_ptr(), dst, name.len()) };
    name.len() as i32
}

/// out f64[5]: live handles, live heap bytes, peak heap bytes, allocations ever, memory bytes.
#[no_mangle]
pub extern "C" fn eg_stats(out: u32) -> i32 {
    call(|s| {
        let out = Out::new(out)?;
        let (live, peak, count) = alloc::stats();
        out.f64(0, s.table.live() as f64);
        out.f64(1, live as f64);
        out.f64(2, peak as f64);
        out.f64(3, count as f64);
        out.f64(4, memory_bytes() as f64);
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// Tensors

fn check_dims(rows: u32, cols: u32, what: &str) -> CallResult<usize> {
    if rows == 0 || cols == 0 {
        return Err(invalid(format!("{what}: shape [{rows}, {cols}] must have both dims >= 1")));
    }
    (rows as usize)
        .checked_mul(cols as usize)
        .filter(|&n| n <= (u32::MAX / 4) as usize)
        .ok_or_else(|| Failure::new(Status::OutOfMemory, format!("{what}: [{rows}, {cols}] is too large for wasm32")))
}

/// New zero-filled f32 tensor (rows, cols). out u32: [handle, data ptr].
#[no_mangle]
pub extern "C" fn eg_tensor_create(rows: u32, cols: u32, out: u32) -> i32 {
    call(|s| {
        let out = Out::new(out)?;
        let len = check_dims(rows, cols, "shape")?;
        let data = zeroed(len, "tensor")?;
        let ptr = addr(&data);
        let h = s.table.insert(Object::Tensor(Tensor { rows: rows as usize, cols: cols as usize, data }))?;
        out.u32(0, h);
        out.u32(1, ptr);
        Ok(())
    })
}

/// out u32: [rows, cols, data ptr].
#[no_mangle]
pub extern "C" fn eg_tensor_info(h: u32, out: u32) -> i32 {
    call(|s| {
        let out = Out::new(out)?;
        let t = s.table.tensor(h, "tensor")?;
        out.u32(0, t.rows as u32);
        out.u32(1, t.cols as u32);
        out.u32(2, addr(&t.data));
        Ok(())
    })
}

/// Frees a tensor; a second free reports DisposedHandle.
#[no_mangle]
pub extern "C" fn eg_tensor_free(h: u32) -> i32 {
    call(|s| {
        s.table.tensor(h, "tensor")?;
        s.table.remove(h, "tensor").map(drop)
    })
}

/// New tensor op(a)·op(b), op = transpose when the flag is 1.
/// out u32: [handle, data ptr, rows, cols].
#[no_mangle]
pub extern "C" fn eg_matmul(a: u32, b: u32, trans_a: u32, trans_b: u32, out: u32) -> i32 {
    call(|s| {
        let out = Out::new(out)?;
        if trans_a > 1 || trans_b > 1 {
            return Err(invalid("transpose flags must be 0 or 1"));
        }
        let (ta, tb) = (trans_a == 1, trans_b == 1);
        let ta_ = s.table.tensor(a, "a")?;
        let tb_ = s.table.tensor(b, "b")?;
        let (m, k) = if ta { (ta_.cols, ta_.rows) } else { (ta_.rows, ta_.cols) };
        let (kb, n) = if tb { (tb_.cols, tb_.rows) } else { (tb_.rows, tb_.cols) };
        if k != kb {
            return Err(Failure::new(
                Status::ShapeMismatch,
                format!("b: inner dimensions differ: op(a) is [{m}, {k}], op(b) is [{kb}, {n}]"),
            ));
        }
        let len = check_dims(m as u32, n as u32, "result")?;
        let mut c = zeroed(len, "result")?;
        // One scratch serves every matmul; it grows to the largest product seen (aᵀ·bᵀ runs as b·a).
        let need = if ta && tb { gemm_scratch_len(n, m, k) } else { gemm_scratch_len(m, n, k) };
        if s.scratch.len() < need {
            s.scratch = zeroed(need, "gemm scratch")?;
        }
        let scratch = &mut s.scratch;
        match (ta, tb) {
            (false, false) => gemm_nn(m, n, k, &ta_.data, &tb_.data, &mut c, false, scratch),
            (false, true) => gemm_nt(m, n, k, &ta_.data, &tb_.data, &mut c, false, scratch),
            (true, false) => gemm_tn(m, n, k, &ta_.data, &tb_.data, &mut c, false, scratch),
            (true, true) => {
                // aᵀ·bᵀ = (b·a)ᵀ: one NN product into a temporary, then a transpose.
                let mut ct = zeroed(len, "result")?;
                gemm_nn(n, m, k, &tb_.data, &ta_.data, &mut ct, false, scratch);
                for i in 0..m {
                    for j in 0..n {
                        c[i * n + j] = ct[j * m + i];
                    }
                }
            }
        }
        let ptr = addr(&c);
        let h = s.table.insert(Object::Tensor(Tensor { rows: m, cols: n, data: c }))?;
        out.u32(0, h);
        out.u32(1, ptr);
        out.u32(2, m as u32);
        out.u32(3, n as u32);
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// Models

/// New sequential model. spec: `n_layers` records of [`LAYER_SPEC_WORDS`] u32 words:
/// [kind, units, activation id, alpha f32 bits, init id, p0 f32 bits, p1 f32 bits, reserved 0]
/// (kind 0 dense: p0 = value of init "constant"; kind 1 batchNorm: units 0, p0 momentum, p1 eps;
/// kind 2 dropout: units 0, p0 rate). The 64-bit seed arrives as two u32 halves.
/// out u32: [handle].
#[no_mangle]
pub extern "C" fn eg_model_create(inputs: u32, n_layers: u32, spec_ptr: u32, seed_lo: u32, seed_hi: u32, out: u32) -> i32 {
    call(|s| {
        let out = Out::new(out)?;
        if n_layers == 0 || n_layers > 4096 {
            return Err(invalid(format!("layers: expected 1..=4096 layers, got {n_layers}")));
        }
        let words = n_layers as usize * LAYER_SPEC_WORDS;
        let p = region(spec_ptr, words * 4, 4, "spec")?;
        // SAFETY: `region` checked that `words` u32s at p are in linear memory and 4-aligned;
        // wasm memory never moves (memory.grow only appends), so the slice stays valid while
        // `to_vec` allocates its copy.
        let raw: Vec<u32> = unsafe { core::slice::from_raw_parts(p as *const u32, words) }.to_vec();
        let mut specs = Vec::with_capacity(n_layers as usize);
        for (l, rec) in raw.chunks_exact(LAYER_SPEC_WORDS).enumerate() {
            let kind = LayerKind::from_u32(rec[0]).ok_or_else(|| invalid(format!("layers[{l}].kind: unknown id {}", rec[0])))?;
            let activation = Activation::from_u32(rec[2]).ok_or_else(|| invalid(format!("layers[{l}].activation: unknown id {}", rec[2])))?;
            let init = Init::from_u32(rec[4]).ok_or_else(|| invalid(format!("layers[{l}].init: unknown id {}", rec[4])))?;
            if rec[7] != 0 {
                return Err(invalid(format!("layers[{l}]: reserved word must be 0, got {}", rec[7])));
            }
            specs.push(LayerSpec {
                kind,
                units: rec[1] as usize,
                activation,
                alpha: f32::from_bits(rec[3]),
                init,
                p0: f32::from_bits(rec[5]),
                p1: f32::from_bits(rec[6]),
            });
        }
        let seed = ((seed_hi as u64) << 32) | seed_lo as u64;
        let model = Model::new(inputs as usize, &specs, seed)?;
        let h = s.table.insert(Object::Model(Box::new(model)))?;
        out.u32(0, h);
        Ok(())
    })
}

/// Chooses loss and optimizer and sizes the arenas for `max_batch`; resets optimizer state,
/// step count, parameter groups and clipping. hp: `hp_len` f32 hyper-parameters of the
/// optimizer: 0 sgd [lr, momentum, dampening, weight_decay, nesterov]; 1 adam and 2 adamw
/// [lr, beta1, beta2, eps, weight_decay, amsgrad]; 3 rmsprop [lr, alpha, eps, weight_decay,
/// momentum, centered]; 4 adagrad [lr, lr_decay, weight_decay, initial_accumulator_value, eps].
#[no_mangle]
pub extern "C" fn eg_model_compile(m: u32, loss_id: u32, max_batch: u32, optimizer_id: u32, hp_ptr: u32, hp_len: u32) -> i32 {
    call(|s| {
        let loss = Loss::from_u32(loss_id).ok_or_else(|| invalid(format!("loss: unknown id {loss_id}")))?;
        if hp_len > 64 {
            return Err(invalid(format!("optimizer: too many hyper-parameters ({hp_len})")));
        }
        let hp: Vec<f32> = if hp_len == 0 {
            Vec::new()
        } else {
            let p = region(hp_ptr, hp_len as usize * 4, 4, "hyper-parameters")?;
            // SAFETY: `region` checked the span and alignment; linear memory never moves, so it
            // stays valid while `to_vec` allocates the copy.
            unsafe { core::slice::from_raw_parts(p as *const f32, hp_len as usize) }.to_vec()
        };
        let optimizer = Optimizer::from_abi(optimizer_id, &hp)?;
        let model = s.table.model_mut(m, "model")?;
        model.compile(loss, optimizer, max_batch as usize)?;
        Ok(())
    })
}

/// out u32[16]: inputs, outputs, layers, param count, max batch, compiled, loss id, x stage ptr,
/// y stage ptr, params ptr, grads ptr, target width, step (low, high), segments, training (0/1).
#[no_mangle]
pub extern "C" fn eg_model_info(m: u32, out: u32) -> i32 {
    call(|s| {
        let out = Out::new(out)?;
        let model = s.table.model_mut(m, "model")?;
        let compiled = model.is_compiled();
        let (xs, ys) = if compiled {
            let xs = addr(model.x_stage_mut()?);
            (xs, addr(model.y_stage_mut()?))
        } else {
            (0, 0)
        };
        out.u32(0, model.inputs() as u32);
        out.u32(1, model.outputs() as u32);
        out.u32(2, model.layers().len() as u32);
        out.u32(3, model.params().len() as u32);
        out.u32(4, model.max_batch() as u32);
        out.u32(5, compiled as u32);
        out.u32(6, model.loss().map_or(u32::MAX, |l| l as u32));
        out.u32(7, xs);
        out.u32(8, ys);
        out.u32(9, addr(model.params()));
        out.u32(10, addr(model.grads()));
        out.u32(11, model.target_width() as u32);
        out.u32(12, model.step() as u32);
        out.u32(13, (model.step() >> 32) as u32);
        out.u32(14, model.segments().len() as u32);
        out.u32(15, model.training() as u32);
        Ok(())
    })
}

/// out u32[8]: kind, inputs, outputs, activation id, alpha f32 bits, param offset, param len,
/// buffer offset (element offsets into the params/grads and buffers arenas; dense: the kernel
/// (I,O) then the bias (O); batchNorm: gamma (F) then beta (F), running mean (F) then running
/// var (F) in buffers; layers without parameters or buffers report where theirs would start).
#[no_mangle]
pub extern "C" fn eg_model_layer_info(m: u32, layer: u32, out: u32) -> i32 {
    call(|s| {
        let out = Out::new(out)?;
        let model = s.table.model_mut(m, "model")?;
        let n = model.layers().len();
        let l = model.layers().get(layer as usize).ok_or_else(|| invalid(format!("layer: {layer} is out of range 0..{n}")))?;
        out.u32(0, l.kind as u32);
        out.u32(1, l.inputs as u32);
        out.u32(2, l.outputs as u32);
        out.u32(3, l.activation as u32);
        out.u32(4, l.alpha.to_bits());
        out.u32(5, l.param_offset as u32);
        out.u32(6, l.param_len as u32);
        out.u32(7, l.buffer_offset as u32);
        Ok(())
    })
}

/// out u32[4]: layer index, role (0 kernel, 1 bias, 2 gamma, 3 beta), element offset, length.
/// Segments are every layer's parameter runs in arena order; parameter groups address them.
#[no_mangle]
pub extern "C" fn eg_model_segment_info(m: u32, seg: u32, out: u32) -> i32 {
    call(|s| {
        let out = Out::new(out)?;
        let model = s.table.model_mut(m, "model")?;
        let n = model.segments().len();
        let sg = model.segments().get(seg as usize).ok_or_else(|| invalid(format!("segment: {seg} is out of range 0..{n}")))?;
        out.u32(0, sg.layer as u32);
        out.u32(1, sg.role as u32);
        out.u32(2, sg.offset as u32);
        out.u32(3, sg.len as u32);
        Ok(())
    })
}

/// Writes a step's result: f32 [loss, total gradient norm before clipping, clip scale].
fn write_step(out: &Out, model: &Model) {
    let st = model.stats();
    out.f32(0, st[0]);
    out.f32(1, st[1]);
    out.f32(2, st[2]);
}

/// One training step on the first `batch` staged rows in the model's mode. out f32[3]: loss,
/// total gradient norm before clipping, clip scale (the statistics block's header).
#[no_mangle]
pub extern "C" fn eg_model_train_staged(m: u32, batch: u32, out: u32) -> i32 {
    call(|s| {
        let out = Out::new(out)?;
        let model = s.table.model_mut(m, "model")?;
        model.train_staged(batch as usize)?;
        write_step(&out, model);
        Ok(())
    })
}

/// Forward + loss + backward on the staged rows in the model's mode, without an update (a
/// training-mode forward still commits batch-norm running statistics and draws dropout
/// masks, as in PyTorch). out f32[0] = mean loss.
#[no_mangle]
pub extern "C" fn eg_model_grad_staged(m: u32, batch: u32, out: u32) -> i32 {
    call(|s| {
        let out = Out::new(out)?;
        let loss = s.table.model_mut(m, "model")?.gradients_staged(batch as usize)?;
        out.f32(0, loss);
        Ok(())
    })
}

/// Clipping and one optimizer update from the current gradient arena (after
/// `eg_model_grad_staged`, possibly modified in place since), with the checks and statistics
/// of a training step. out f32[3] as `eg_model_train_staged` (loss = the last one computed).
/// InvalidState when no gradients were computed since compile or the last computation failed.
#[no_mangle]
pub extern "C" fn eg_model_apply_gradients(m: u32, out: u32) -> i32 {
    call(|s| {
        let out = Out::new(out)?;
        let model = s.table.model_mut(m, "model")?;
        model.apply_gradients()?;
        write_step(&out, model);
        Ok(())
    })
}

/// A new seeded permutation of 0..n kept by the model for `eg_model_train_rows`.
#[no_mangle]
pub extern "C" fn eg_model_shuffle(m: u32, n: u32) -> i32 {
    call(|s| s.table.model_mut(m, "model")?.shuffle(n as usize).map_err(Failure::from))
}

/// One training step on rows start..start+count of tensors x (n, inputs) and y (n, target
/// width), in the last shuffle's order when use_perm = 1. out f32[3] as `eg_model_train_staged`.
#[no_mangle]
pub extern "C" fn eg_model_train_rows(m: u32, x: u32, y: u32, start: u32, count: u32, use_perm: u32, out: u32) -> i32 {
    call(|s| {
        let out = Out::new(out)?;
        if use_perm > 1 {
            return Err(invalid("use_perm must be 0 or 1"));
        }
        let mut model = s.table.take_model(m, "model")?;
        let result = (|| {
            let xt = s.table.tensor(x, "x")?;
            let yt = s.table.tensor(y, "y")?;
            if xt.rows != yt.rows {
                return Err(Failure::new(Status::ShapeMismatch, format!("y: has {} rows but x has {}", yt.rows, xt.rows)));
            }
            model
                .train_rows(&xt.data, &yt.data, xt.rows, start as usize, count as usize, use_perm == 1)
                .map_err(Failure::from)
        })();
        if result.is_ok() {
            write_step(&out, &model);
        }
        s.table.put_model(m, model);
        result.map(drop)
    })
}

/// Inference in eval mode on the first `batch` staged rows. out u32[0] = address of the
/// (batch, outputs) result, valid until the next call on this model.
#[no_mangle]
pub extern "C" fn eg_model_predict_staged(m: u32, batch: u32, out: u32) -> i32 {
    call(|s| {
        let out = Out::new(out)?;
        let y = s.table.model_mut(m, "model")?.predict_staged(batch as usize)?;
        out.u32(0, addr(y));
        Ok(())
    })
}

/// Loss and correct-prediction count in eval mode on the staged rows. out: f32[0] loss,
/// u32[1] correct.
#[no_mangle]
pub extern "C" fn eg_model_evaluate_staged(m: u32, batch: u32, out: u32) -> i32 {
    call(|s| {
        let out = Out::new(out)?;
        let (loss, correct) = s.table.model_mut(m, "model")?.evaluate_staged(batch as usize)?;
        out.f32(0, loss);
        out.u32(1, correct);
        Ok(())
    })
}

/// Replaces all parameters with `len` f32 at src_ptr (the params arena's layout); all or nothing.
#[no_mangle]
pub extern "C" fn eg_model_set_params(m: u32, src_ptr: u32, len: u32) -> i32 {
    call(|s| {
        let model = s.table.model_mut(m, "model")?;
        if len as usize != model.params().len() {
            return Err(Failure::new(
                Status::ShapeMismatch,
                format!("weights: expected {} values, got {len}", model.params().len()),
            ));
        }
        if len == 0 {
            return Ok(());
        }
        let p = region(src_ptr, len as usize * 4, 4, "weights")?;
        // SAFETY: `region` checked the span and alignment. The values are copied out first,
        // so a source overlapping the model's own params arena is still read before written.
        let src: Vec<f32> = unsafe { core::slice::from_raw_parts(p as *const f32, len as usize) }.to_vec();
        model.set_params(&src).map_err(Failure::from)
    })
}

/// Training mode (1: batch statistics, dropout on) or eval mode (0) for the train and gradient
/// exports; predict and evaluate always run in eval mode. Models start in training mode.
#[no_mangle]
pub extern "C" fn eg_model_set_training(m: u32, on: u32) -> i32 {
    call(|s| {
        if on > 1 {
            return Err(invalid(format!("training: must be 0 or 1, got {on}")));
        }
        s.table.model_mut(m, "model")?.set_training(on == 1);
        Ok(())
    })
}

/// Sets the optimizer's base learning rate (finite, >= 0); parameter groups keep their scale.
#[no_mangle]
pub extern "C" fn eg_model_set_lr(m: u32, lr: f32) -> i32 {
    call(|s| s.table.model_mut(m, "model")?.set_lr(lr).map_err(Failure::from))
}

/// Per-segment optimizer settings: `n` (= the segment count) records of two f32 words at ptr,
/// [lr scale, weight decay], in segment order. Defaults after compile: scale 1 and the
/// optimizer's weight decay. All or nothing.
#[no_mangle]
pub extern "C" fn eg_model_set_param_groups(m: u32, ptr: u32, n: u32) -> i32 {
    call(|s| {
        let model = s.table.model_mut(m, "model")?;
        let segments = model.segments().len();
        if n as usize != segments {
            return Err(Failure::new(Status::ShapeMismatch, format!("paramGroups: expected one record per segment ({segments}), got {n}")));
        }
        let groups: Vec<ParamGroup> = if n == 0 {
            Vec::new()
        } else {
            let p = region(ptr, n as usize * 8, 4, "paramGroups")?;
            // SAFETY: `region` checked that 2·n f32s at p are in linear memory and 4-aligned;
            // linear memory never moves, so it stays valid while the groups are collected.
            let raw = unsafe { core::slice::from_raw_parts(p as *const f32, 2 * n as usize) };
            raw.chunks_exact(2).map(|r| ParamGroup { lr_scale: r[0], weight_decay: r[1] }).collect()
        };
        model.set_param_groups(&groups).map_err(Failure::from)
    })
}

/// Gradient clipping inside every update: by value (clamp to ±clip_value) first, then by
/// global L2 norm (torch's clip_grad_norm_). 0 = off; both finite and >= 0.
#[no_mangle]
pub extern "C" fn eg_model_set_clipping(m: u32, clip_norm: f32, clip_value: f32) -> i32 {
    call(|s| s.table.model_mut(m, "model")?.set_clipping(clip_norm, clip_value).map_err(Failure::from))
}

/// out u32[2]: address and length (floats) of the statistics block, rewritten by every
/// successful update: [loss, total gradient norm before clipping, clip scale (1 = none), then
/// per layer: gradient norm (before clipping), weight norm (after the update), update norm,
/// update/weight ratio (0 when the weight norm is 0)]. Zeros before the first update.
#[no_mangle]
pub extern "C" fn eg_model_stats_ptr(m: u32, out: u32) -> i32 {
    call(|s| {
        let out = Out::new(out)?;
        let model = s.table.model_mut(m, "model")?;
        out.u32(0, addr(model.stats()));
        out.u32(1, model.stats().len() as u32);
        Ok(())
    })
}

/// out u32[2]: address and length (floats) of the buffers arena (batch-norm running mean then
/// running var per batchNorm layer, at each layer's buffer offset).
#[no_mangle]
pub extern "C" fn eg_model_buffers(m: u32, out: u32) -> i32 {
    call(|s| {
        let out = Out::new(out)?;
        let model = s.table.model_mut(m, "model")?;
        out.u32(0, addr(model.buffers()));
        out.u32(1, model.buffers().len() as u32);
        Ok(())
    })
}

/// out u32[3]: address and length (floats) of the optimizer state arena and its number of
/// roles; role r of a model with P parameters is floats r·P..(r+1)·P, laid out like params
/// (sgd: momentum buffer; adam/adamw: exp_avg, exp_avg_sq[, max_exp_avg_sq]; rmsprop:
/// square_avg[, grad_avg][, momentum buffer]; adagrad: sum). InvalidState before compile.
#[no_mangle]
pub extern "C" fn eg_model_optimizer_state(m: u32, out: u32) -> i32 {
    call(|s| {
        let out = Out::new(out)?;
        let model = s.table.model_mut(m, "model")?;
        let opt = model.optimizer().ok_or_else(|| Failure::new(Status::InvalidState, "model is not compiled: call compile() first"))?;
        let roles = opt.state_roles();
        out.u32(0, addr(model.optimizer_state()));
        out.u32(1, model.optimizer_state().len() as u32);
        out.u32(2, roles as u32);
        Ok(())
    })
}

/// Replaces the batch-norm running statistics with `len` f32 at src_ptr (the buffers arena's
/// layout, see `eg_model_buffers`); finite, variances >= 0; all or nothing.
#[no_mangle]
pub extern "C" fn eg_model_set_buffers(m: u32, src_ptr: u32, len: u32) -> i32 {
    call(|s| {
        let model = s.table.model_mut(m, "model")?;
        if len as usize != model.buffers().len() {
            return Err(Failure::new(Status::ShapeMismatch, format!("buffers: expected {} values, got {len}", model.buffers().len())));
        }
        if len == 0 {
            return Ok(());
        }
        let p = region(src_ptr, len as usize * 4, 4, "buffers")?;
        // SAFETY: `region` checked the span and alignment; copied out before the model is written.
        let src: Vec<f32> = unsafe { core::slice::from_raw_parts(p as *const f32, len as usize) }.to_vec();
        model.set_buffers(&src).map_err(Failure::from)
    })
}

/// Serialises model `m` with `extra_len` caller bytes at extra_ptr (see
/// edgegrad_nn::checkpoint for the format). out u32: [address, byte length] of a new block the
/// caller must release with `eg_free(address, length)`.
#[no_mangle]
pub extern "C" fn eg_model_save(m: u32, extra_ptr: u32, extra_len: u32, out: u32) -> i32 {
    call(|s| {
        let out = Out::new(out)?;
        let extra: Vec<u8> = if extra_len == 0 {
            Vec::new()
        } else {
            let p = region(extra_ptr, extra_len as usize, 1, "extra")?;
            // SAFETY: `region` checked the span; linear memory never moves, so it
            // stays valid while `to_vec` allocates the copy.
            unsafe { core::slice::from_raw_parts(p as *const u8, extra_len as usize) }.to_vec()
        };
        let bytes = edgegrad_nn::checkpoint::save(s.table.model_mut(m, "model")?, &extra)?;
        let ptr = eg_alloc(bytes.len() as u32);
        if ptr == 0 {
            return Err(Failure::new(Status::OutOfMemory, format!("checkpoint: cannot allocate {} bytes", bytes.len())));
        }
        // SAFETY: eg_alloc returned a fresh block of bytes.len() bytes.
        unsafe { core::slice::from_raw_parts_mut(ptr as usize as *mut u8, bytes.len()) }.copy_from_slice(&bytes);
        out.u32(0, ptr);
        out.u32(1, bytes.len() as u32);
        Ok(())
    })
}

/// Parses and checks `len` checkpoint bytes at ptr. With m = 0 only checks them; otherwise
/// also checks that model m has the same architecture and then replaces its whole state (all
/// or nothing). out u32: [byte offset, byte length] of the extra section within the bytes, loss
/// id (u32::MAX when the checkpoint is not compiled)].
#[no_mangle]
pub extern "C" fn eg_model_load(m: u32, ptr: u32, len: u32, out: u32) -> i32 {
    call(|s| {
        let out = Out::new(out)?;
        if m != 0 {
            s.table.model_mut(m, "model")?;
        }
        let bytes: Vec<u8> = if len == 0 {
            Vec::new()
        } else {
            let p = region(ptr, len as usize, 1, "checkpoint")?;
            // SAFETY: `region` checked the span; linear memory never moves, so it
            // stays valid while `to_vec` allocates the copy.
            unsafe { core::slice::from_raw_parts(p as *const u8, len as usize) }.to_vec()
        };
        let parsed = edgegrad_nn::checkpoint::parse(&bytes)?;
        let loss = parsed.model.loss().map_or(u32::MAX, |l| l as u32);
        if m != 0 {
            let model = s.table.model_mut(m, "model")?;
            edgegrad_nn::checkpoint::same_architecture(model, &parsed.model)?;
            *model = parsed.model;
        }
        out.u32(0, parsed.extra.start as u32);
        out.u32(1, parsed.extra.len() as u32);
        out.u32(2, loss);
        Ok(())
    })
}

/// Frees a model; a second free reports DisposedHandle.
#[no_mangle]
pub extern "C" fn eg_model_free(m: u32) -> i32 {
    call(|s| {
        s.table.model_mut(m, "model")?;
        s.table.remove(m, "model").map(drop)
    })
}
