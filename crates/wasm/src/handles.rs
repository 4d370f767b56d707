//! The handle table: every tensor and model the JS side holds is a u32 handle into it.
//! A handle packs slot index + 1 (low 16 bits) and the slot's generation (high 16 bits), so a
//! handle kept after `free` is recognised as stale instead of reaching a reused slot.

use crate::status::{CallResult, Failure, Status};
use edgegrad_nn::Model;

/// A row-major f32 matrix (rows, cols) owned by the wasm heap.
pub struct Tensor {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

pub enum Object {
    Tensor(Tensor),
    Model(Box<Model>),
}

impl Object {
    fn kind(&self) -> &'static str {
        match self {
            Object::Tensor(_) => "tensor",
            Object::Model(_) => "model",
        }
    }
}

struct Slot {
    generation: u16,
    object: Option<Object>,
}

/// Slots are reused through a free list; at most 65,535 objects are live at once.
pub const MAX_LIVE: usize = 0xFFFF;

#[derive(Default)]
pub struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
}

impl Table {
    pub fn live(&self) -> usize {
        self.live
    }

    /// Stores `object` and returns its handle.
    pub fn insert(&mut self, object: Object) -> CallResult<u32> {
        let oom = || Failure::new(Status::OutOfMemory, "handle table: cannot grow");
        if let Some(index) = self.free.pop() {
            let slot = &mut self.slots[index as usize];
            slot.object = Some(object);
            self.live += 1;
            return Ok(encode(index, slot.generation));
        }
        if self.slots.len() >= MAX_LIVE {
            return Err(Failure::new(Status::OutOfMemory, format!("handle table: more than {MAX_LIVE} live objects")));
        }
        self.slots.try_reserve(1).map_err(|_| oom())?;
        // Reserve the free-list entry now so that `remove` never allocates.
        self.free.try_reserve(self.slots.len() + 1 - self.free.len()).map_err(|_| oom())?;
        let index = self.slots.len() as u32;
        self.slots.push(Slot { generation: 1, object: Some(object) });
        self.live += 1;
        Ok(encode(index, 1))
    }

    fn slot_index(&self, handle: u32, what: &str) -> CallResult<usize> {
        let (index, generation) = decode(handle).ok_or_else(|| Failure::new(Status::InvalidArgument, format!("{what}: 0 is not a handle")))?;
        match self.slots.get(index as usize) {
            Some(slot) if slot.generation == generation && slot.object.is_some() => Ok(index as usize),
            Some(_) => Err(Failure::new(Status::DisposedHandle, format!("{what}: handle {handle:#x} was disposed"))),
            None => Err(Failure::new(Status::InvalidArgument, format!("{what}: {handle:#x} is not a live handle"))),
        }
    }

    /// Frees the object behind `handle`; the handle (and copies of it) become stale.
    pub fn remove(&mut self, handle: u32, what: &str) -> CallResult<Object> {
        let index = self.slot_index(handle, what)?;
        let slot = &mut self.slots[index];
        let object = slot.object.take().ok_or_else(|| Failure::new(Status::Internal, "empty slot"))?;
        slot.generation = slot.generation.wrapping_add(1).max(1);
        self.free.push(index as u32);
        self.live -= 1;
        Ok(object)
    }

    pub fn tensor(&self, handle: u32, what: &str) -> CallResult<&Tensor> {
        match self.slots[self.slot_index(handle, what)?].object.as_ref() {
            Some(Object::Tensor(t)) => Ok(t),
            other => Err(wrong_kind(what, "tensor", other)),
        }
    }

    pub fn model_mut(&mut self, handle: u32, what: &str) -> CallResult<&mut Model> {
        let index = self.slot_index(handle, what)?;
        match self.slots[index].object.as_mut() {
            Some(Object::Model(m)) => Ok(m),
            other => Err(wrong_kind(what, "model", other.map(|o| &*o))),
        }
    }

    /// Moves the model out of its slot so that tensors can be borrowed beside it; hand it back
    /// with `put_model`. No allocation (the box moves).
    pub fn take_model(&mut self, handle: u32, what: &str) -> CallResult<Box<Model>> {
        let index = self.slot_index(handle, what)?;
        match self.slots[index].object.take() {
            Some(Object::Model(m)) => Ok(m),
            other => {
                let e = wrong_kind(what, "model", other.as_ref());
                self.slots[index].object = other;
                Err(e)
            }
        }
    }

    pub fn put_model(&mut self, handle: u32, model: Box<Model>) {
        let index = (handle & 0xFFFF) as usize - 1;
        self.slots[index].object = Some(Object::Model(model));
    }
}

fn wrong_kind(what: &str, want: &str, got: Option<&Object>) -> Failure {
    let got = got.map_or("nothing", Object::kind);
    Failure::new(Status::InvalidArgument, format!("{what}: expected a {want} handle, got a {got}"))
}

fn encode(index: u32, generation: u16) -> u32 {
    ((generation as u32) << 16) | (index + 1)
}

fn decode(handle: u32) -> Option<(u32, u16)> {
    let low = handle & 0xFFFF;
    if low == 0 {
        return None;
    }
    Some((low - 1, (handle >> 16) as u16))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor() -> Object {
        Object::Tensor(Tensor { rows: 1, cols: 1, data: vec![0.0] })
    }

    #[test]
    fn stale_handles_are_detected_after_reuse() {
        let mut t = Table::default();
        let a = t.insert(tensor()).ok().unwrap();
        t.remove(a, "a").ok().unwrap();
        let b = t.insert(tensor()).ok().unwrap();
        assert_ne!(a, b, "reused slot must get a new generation");
        assert_eq!(a & 0xFFFF, b & 0xFFFF);
        assert_eq!(t.tensor(a, "a").err().map(|f| f.status), Some(Status::DisposedHandle));
        assert!(t.tensor(b, "b").is_ok());
        assert_eq!(t.remove(a, "a").err().map(|f| f.status), Some(Status::DisposedHandle));
        assert_eq!(t.live(), 1);
    }

    #[test]
    fn zero_and_unknown_handles_are_invalid() {
        let t = Table::default();
        assert_eq!(t.tensor(0, "x").err().map(|f| f.status), Some(Status::InvalidArgument));
        assert_eq!(t.tensor(0x0001_0005, "x").err().map(|f| f.status), Some(Status::InvalidArgument));
    }
}
