//! Checkpoints natively: save → parse resumes bit-identically (Adam, batch norm, dropout,
//! shuffled rows), the extra section round-trips, and truncated / bit-flipped / wrong-version /
//! random input is always an error naming the problem (a seeded fuzz of a few thousand cases).

use edgegrad_nn::checkpoint::{crc32, parse, same_architecture, save, HEADER_BYTES};
use edgegrad_nn::kernels::activation::Activation;
use edgegrad_nn::kernels::loss::Loss;
use edgegrad_nn::{ErrorKind, LayerSpec, Model, Optimizer, OptimizerKind};

fn data(n: usize, inputs: usize, classes: usize) -> (Vec<f32>, Vec<f32>) {
    let mut s = 1u64;
    let mut next = || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (s >> 40) as f32 / (1u64 << 24) as f32
    };
    let x: Vec<f32> = (0..n * inputs).map(|_| next() * 2.0 - 1.0).collect();
    let y: Vec<f32> = (0..n).map(|_| ((next() * classes as f32) as usize).min(classes - 1) as f32).collect();
    (x, y)
}

fn model() -> Model {
    let specs = [
        LayerSpec::dense(8, Activation::Relu),
        LayerSpec::batch_norm().with_activation(Activation::Tanh),
        LayerSpec::dropout(0.25),
        LayerSpec::dense(3, Activation::Identity),
    ];
    let mut m = Model::new(5, &specs, 42).unwrap();
    let adam = Optimizer::from_abi(OptimizerKind::Adam as u32, &[1e-2, 0.9, 0.999, 1e-8, 1e-3, 0.0]).unwrap();
    m.compile(Loss::SoftmaxCrossEntropy, adam, 8).unwrap();
    m
}

/// One epoch of shuffled batches of 8 (the last one 4 rows).
fn epoch(m: &mut Model, x: &[f32], y: &[f32], n: usize) {
    m.shuffle(n).unwrap();
    let mut start = 0;
    while start < n {
        let count = 8.min(n - start);
        m.train_rows(x, y, n, start, count, true).unwrap();
        start += count;
    }
}

#[test]
fn resume_is_bit_identical() {
    let n = 36;
    let (x, y) = data(n, 5, 3);
    let mut a = model();
    for _ in 0..3 {
        epoch(&mut a, &x, &y, n);
    }
    // Mid-epoch too: shuffle, one batch, save, the rest.
    a.shuffle(n).unwrap();
    a.train_rows(&x, &y, n, 0, 8, true).unwrap();
    let bytes = save(&a, b"{\"ts\":1}").unwrap();
    let mut b = parse(&bytes).unwrap();
    assert_eq!(&bytes[b.extra.clone()], b"{\"ts\":1}");
    for start in (8..n).step_by(8) {
        let count = 8.min(n - start);
        a.train_rows(&x, &y, n, start, count, true).unwrap();
        b.model.train_rows(&x, &y, n, start, count, true).unwrap();
    }
    for _ in 0..3 {
        epoch(&mut a, &x, &y, n);
        epoch(&mut b.model, &x, &y, n);
    }
    let bits = |m: &Model| m.params().iter().chain(m.buffers()).chain(m.optimizer_state()).map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&a), bits(&b.model));
    assert_eq!(a.step(), b.model.step());
    assert_eq!(a.rng_state(), b.model.rng_state());
    same_architecture(&a, &b.model).unwrap();
    // Saving the resumed model gives the same bytes as saving the original.
    assert_eq!(save(&a, b"").unwrap(), save(&b.model, b"").unwrap());
}

#[test]
fn uncompiled_models_round_trip() {
    let m = Model::new(3, &[LayerSpec::dense(2, Activation::Sigmoid)], 7).unwrap();
    let p = parse(&save(&m, &[]).unwrap()).unwrap();
    assert!(!p.model.is_compiled());
    assert_eq!(p.model.params(), m.params());
}

#[test]
fn crc32_matches_zlib() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32(b""), 0);
}

fn kind_of(bytes: &[u8]) -> (ErrorKind, String) {
    match parse(bytes) {
        Ok(_) => panic!("accepted a corrupt checkpoint"),
        Err(e) => (e.kind, e.message),
    }
}

#[test]
fn corrupt_checkpoints_are_rejected_with_the_reason() {
    let good = save(&model(), b"extra").unwrap();
    let (k, msg) = kind_of(&good[..good.len() - 1]);
    assert_eq!(k, ErrorKind::InvalidArgument);
    assert!(msg.starts_with("checkpoint: truncated"), "{msg}");
    let mut flipped = good.clone();
    flipped[HEADER_BYTES + 40] ^= 0x10;
    assert!(kind_of(&flipped).1.starts_with("checkpoint: checksum"));
    let mut version = good.clone();
    version[8] = 9;
    assert!(kind_of(&version).1.starts_with("checkpoint: version"));
    let mut magic = good.clone();
    magic[0] = b'X';
    assert!(kind_of(&magic).1.starts_with("checkpoint: magic"));
    assert!(kind_of(&[]).1.starts_with("checkpoint: magic"));
    let other = Model::new(5, &[LayerSpec::dense(3, Activation::Identity)], 1).unwrap();
    let e = same_architecture(&other, &parse(&good).unwrap().model).unwrap_err();
    assert_eq!(e.kind, ErrorKind::ShapeMismatch);
}

/// Seeded fuzz: random bytes, random bytes behind a valid header, and valid checkpoints with
/// one to four random byte edits, each with the checksum recomputed half of the time (so the
/// parser behind the CRC is exercised too). Never a panic; accepted inputs are valid models.
#[test]
fn fuzz_parse_never_panics() {
    let good = save(&model(), b"{}").unwrap();
    let mut s = 0x5EED_u64;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let (mut accepted, mut cases) = (0, 0);
    for case in 0..4000 {
        let mut b = match case % 3 {
            0 => (0..(rnd() % 200) as usize).map(|_| rnd() as u8).collect::<Vec<u8>>(),
            1 => {
                let mut v = good[..HEADER_BYTES].to_vec();
                v.extend((0..(rnd() % 400) as usize).map(|_| rnd() as u8));
                v
            }
            _ => {
                let mut v = good.clone();
                for _ in 0..1 + rnd() % 4 {
                    let i = (rnd() as usize) % v.len();
                    v[i] = rnd() as u8;
                }
                if rnd() % 5 == 0 {
                    v.truncate((rnd() as usize) % v.len());
                }
                v
            }
        };
        if rnd() % 2 == 0 && b.len() >= HEADER_BYTES {
            let len = (b.len() - HEADER_BYTES) as u64;
            b[16..24].copy_from_slice(&len.to_le_bytes());
            let c = crc32(&b[HEADER_BYTES..]);
            b[24..28].copy_from_slice(&c.to_le_bytes());
        }
        cases += 1;
        if let Ok(p) = parse(&b) {
            accepted += 1;
            assert!(p.model.params().iter().all(|v| v.is_finite()));
        }
    }
    assert_eq!(cases, 4000);
    assert!(accepted < cases);
}
