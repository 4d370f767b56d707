//! Behaviour of `Model` natively: learning, determinism, all-or-nothing failures, and no heap
//! allocation per training step for every optimizer, batch norm and dropout (counted by a
//! wrapping global allocator).

use edgegrad_nn::kernels::activation::Activation;
use edgegrad_nn::kernels::loss::Loss;
use edgegrad_nn::{ErrorKind, LayerSpec, Model, Optimizer, ParamGroup};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;
thread_local! {
    // Per thread, because the test harness runs the other tests concurrently.
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to System unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: caller's contract.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: caller's contract.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn spec(units: usize, activation: Activation) -> LayerSpec {
    LayerSpec::dense(units, activation)
}

fn xor_model(seed: u64) -> Model {
    let mut m = Model::new(2, &[spec(8, Activation::Tanh), spec(2, Activation::Identity)], seed).unwrap();
    m.compile(Loss::SoftmaxCrossEntropy, Optimizer::sgd(0.5), 4).unwrap();
    m
}

fn stage_xor(m: &mut Model) {
    m.x_stage_mut().unwrap().copy_from_slice(&[0., 0., 0., 1., 1., 0., 1., 1.]);
    m.y_stage_mut().unwrap().copy_from_slice(&[0., 1., 1., 0.]);
}

#[test]
fn learns_xor() {
    let mut m = xor_model(3);
    stage_xor(&mut m);
    let first = m.train_staged(4).unwrap();
    let mut last = first;
    for _ in 0..500 {
        last = m.train_staged(4).unwrap();
    }
    assert!(last < 0.05 * first, "loss {first} -> {last}");
    let (_, correct) = m.evaluate_staged(4).unwrap();
    assert_eq!(correct, 4);
    assert_eq!(m.step(), 501);
}

#[test]
fn same_seed_same_weights_and_order() {
    let a = xor_model(11);
    let b = xor_model(11);
    let c = xor_model(12);
    assert_eq!(a.params(), b.params());
    assert_ne!(a.params(), c.params());
    let (mut a, mut b) = (a, b);
    let x: Vec<f32> = (0..20).map(|i| i as f32 / 10.0).collect();
    let y: Vec<f32> = (0..10).map(|i| (i % 2) as f32).collect();
    for _ in 0..3 {
        a.shuffle(10).unwrap();
        b.shuffle(10).unwrap();
        for start in [0, 4, 8] {
            let count = 4.min(10 - start);
            let la = a.train_rows(&x, &y, 10, start, count, true).unwrap();
            let lb = b.train_rows(&x, &y, 10, start, count, true).unwrap();
            assert_eq!(la.to_bits(), lb.to_bits());
        }
    }
    assert_eq!(a.params(), b.params());
}

#[test]
fn bad_batches_change_nothing() {
    let mut m = xor_model(5);
    stage_xor(&mut m);
    m.train_staged(4).unwrap();
    let before = m.params().to_vec();
    let step = m.step();

    m.y_stage_mut().unwrap()[2] = 2.0; // class 2 of 2
    let e = m.train_staged(4).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert!(e.message.contains("row 2"), "{}", e.message);

    stage_xor(&mut m);
    m.x_stage_mut().unwrap()[3] = f32::NAN;
    let e = m.train_staged(4).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NonFinite);
    assert!(e.message.contains("row 1, column 1"), "{}", e.message);

    stage_xor(&mut m);
    assert_eq!(m.train_staged(5).unwrap_err().kind, ErrorKind::InvalidArgument);
    assert_eq!(m.train_staged(0).unwrap_err().kind, ErrorKind::InvalidArgument);

    assert_eq!(m.params(), &before[..], "a failed step must not touch the parameters");
    assert_eq!(m.step(), step);
}

#[test]
fn non_finite_loss_skips_the_update() {
    // Finite inputs whose products overflow f32: z = ±inf, so the loss is not finite.
    let mut m = Model::new(2, &[spec(2, Activation::Identity)], 1).unwrap();
    m.compile(Loss::MeanSquaredError, Optimizer::sgd(0.1), 2).unwrap();
    m.x_stage_mut().unwrap().fill(3.0e38);
    m.y_stage_mut().unwrap().fill(0.0);
    let before = m.params().to_vec();
    let e = m.train_staged(2).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NonFinite);
    assert!(e.message.contains("step 1"), "{}", e.message);
    assert_eq!(m.params(), &before[..]);
    assert_eq!(m.step(), 0);
}

#[test]
fn set_params_is_all_or_nothing() {
    let mut m = xor_model(1);
    let before = m.params().to_vec();
    let mut bad = before.clone();
    bad[5] = f32::INFINITY;
    assert_eq!(m.set_params(&bad).unwrap_err().kind, ErrorKind::NonFinite);
    assert_eq!(m.set_params(&before[1..]).unwrap_err().kind, ErrorKind::ShapeMismatch);
    assert_eq!(m.params(), &before[..]);
    let ones = vec![1.0; before.len()];
    m.set_params(&ones).unwrap();
    assert_eq!(m.params(), &ones[..]);
}

#[test]
fn invalid_models_are_rejected() {
    assert!(Model::new(0, &[spec(1, Activation::Relu)], 0).is_err());
    assert!(Model::new(3, &[], 0).is_err());
    assert!(Model::new(3, &[spec(0, Activation::Relu)], 0).is_err());
    let mut m = Model::new(3, &[spec(2, Activation::Relu)], 0).unwrap();
    assert_eq!(m.train_staged(1).unwrap_err().kind, ErrorKind::InvalidState);
    assert!(m.compile(Loss::MeanSquaredError, Optimizer::sgd(f32::NAN), 4).is_err());
    assert!(m.compile(Loss::MeanSquaredError, Optimizer::sgd(0.1), 0).is_err());
    assert!(!m.is_compiled());
}

/// One of each optimizer shape: every state layout the compile can size.
fn every_optimizer() -> Vec<Optimizer> {
    let abi: [(u32, &[f32]); 8] = [
        (0, &[0.01, 0.0, 0.0, 0.0, 0.0]),
        (0, &[0.01, 0.9, 0.0, 1e-4, 1.0]),
        (1, &[1e-3, 0.9, 0.999, 1e-8, 1e-4, 0.0]),
        (1, &[1e-3, 0.9, 0.999, 1e-8, 0.0, 1.0]),
        (2, &[1e-3, 0.9, 0.999, 1e-8, 1e-2, 0.0]),
        (3, &[1e-3, 0.99, 1e-8, 1e-4, 0.9, 1.0]),
        (3, &[1e-3, 0.99, 1e-8, 0.0, 0.0, 0.0]),
        (4, &[1e-2, 0.01, 1e-4, 0.1, 1e-10]),
    ];
    abi.iter().map(|(k, hp)| Optimizer::from_abi(*k, hp).unwrap()).collect()
}

#[test]
fn training_steps_allocate_nothing_after_the_first() {
    let specs = [
        spec(32, Activation::Relu),
        LayerSpec::batch_norm().with_activation(Activation::Gelu),
        LayerSpec::dropout(0.25),
        spec(16, Activation::Tanh),
        spec(3, Activation::Identity),
    ];
    let losses = [Loss::SoftmaxCrossEntropy, Loss::MeanSquaredError, Loss::BinaryCrossEntropyWithLogits];
    for (o, optimizer) in every_optimizer().into_iter().enumerate() {
        let loss = losses[o % losses.len()];
        let mut m = Model::new(10, &specs, 9).unwrap();
        m.compile(loss, optimizer, 16).unwrap();
        let groups: Vec<ParamGroup> = m.segments().iter().map(|s| ParamGroup { lr_scale: 1.0 + s.layer as f32, weight_decay: 0.0 }).collect();
        m.set_param_groups(&groups).unwrap();
        m.set_clipping(1.0, 0.5).unwrap();
        let tw = m.target_width();
        let x: Vec<f32> = (0..40 * 10).map(|i| ((i * 37 % 17) as f32 - 8.0) / 8.0).collect();
        let y: Vec<f32> = (0..40 * tw).map(|i| (i % 3) as f32 * if tw == 1 { 1.0 } else { 0.5 }).collect();
        m.shuffle(40).unwrap();
        m.train_rows(&x, &y, 40, 0, 16, true).unwrap();
        let before = ALLOCS.with(Cell::get);
        for epoch in 0..10 {
            m.set_training(epoch % 3 != 2);
            m.shuffle(40).unwrap();
            for start in [0, 16, 32] {
                m.train_rows(&x, &y, 40, start, 16.min(40 - start), epoch % 2 == 0).unwrap();
            }
            m.gradients_staged(8).unwrap();
            m.apply_gradients().unwrap();
            m.set_lr(1e-3 / (1.0 + epoch as f32)).unwrap();
            m.evaluate_staged(8).unwrap();
            m.predict_staged(8).unwrap();
        }
        assert_eq!(ALLOCS.with(Cell::get), before, "{:?} / {}: training allocated", m.optimizer().unwrap(), loss.name());
        assert_eq!(m.step(), 1 + 10 * 4);
    }
}
