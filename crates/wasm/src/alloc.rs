//! A counting wrapper around the system allocator, so `eg_stats` can prove that a training step
//! allocates nothing in the wasm heap (allocation count and live bytes stay flat).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

pub struct CountingAlloc;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);
static PEAK_BYTES: AtomicUsize = AtomicUsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
/// Live-byte ceiling (`set_limit`); unlimited by default (the wasm32 address space caps it at
/// 4 GiB); ts/workerd.ts sets 96 MiB inside Cloudflare Workers, whose isolates have 128 MB. Only allocations made through `edgegrad_nn::error::alloc_f32`
/// (tensors, parameter/optimizer/activation arenas: everything that grows with a model) are
/// refused at the limit; any other refusal would abort, i.e. trap the instance.
static LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Sets the live-byte ceiling; an arena allocation that would cross it fails (OutOfMemory).
pub fn set_limit(bytes: usize) {
    LIMIT.store(bytes, Relaxed);
}

/// The live-byte ceiling.
pub fn limit() -> usize {
    LIMIT.load(Relaxed)
}

/// True when an allocation of `size` more bytes must be refused.
fn over_limit(size: usize) -> bool {
    edgegrad_nn::error::FALLIBLE_ALLOC.load(Relaxed) && LIVE_BYTES.load(Relaxed).saturating_add(size) > LIMIT.load(Relaxed)
}

fn note_alloc(size: usize) {
    let live = LIVE_BYTES.fetch_add(size, Relaxed) + size;
    PEAK_BYTES.fetch_max(live, Relaxed);
    ALLOCATIONS.fetch_add(1, Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's layout unchanged; the counters
// are plain atomics and never affect the returned pointers.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if over_limit(layout.size()) {
            return core::ptr::null_mut();
        }
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note_alloc(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if over_limit(layout.size()) {
            return core::ptr::null_mut();
        }
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note_alloc(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        LIVE_BYTES.fetch_sub(layout.size(), Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() && over_limit(new_size - layout.size()) {
            return core::ptr::null_mut();
        }
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE_BYTES.fetch_sub(layout.size(), Relaxed);
            note_alloc(new_size);
        }
        p
    }
}

/// (live bytes, peak live bytes, allocations ever made).
pub fn stats() -> (usize, usize, usize) {
    (LIVE_BYTES.load(Relaxed), PEAK_BYTES.load(Relaxed), ALLOCATIONS.load(Relaxed))
}
