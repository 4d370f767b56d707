//! Optimizer updates, each one pass over a whole parameter arena (all layers' weights and
//! biases laid out back to back), so the loop is long, contiguous and vectorisable.

/// Plain SGD over a whole parameter arena: params -= lr · grads (equal lengths).
///
/// Written as a zip over two slices with no indexing, so the compiler drops bounds checks and
/// vectorises it (to `f32x4` mul/sub when built with `+simd128`).
pub fn sgd_update(params: &mut [f32], grads: &[f32], lr: f32) {
    assert_eq!(
        params.len(),
        grads.len(),
        "sgd_update: params has {} floats, grads {}",
        params.len(),
        grads.len()
    );
    for (p, &g) in params.iter_mut().zip(grads) {
        *p -= lr * g;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sgd_update_matches_formula() {
        let mut p: Vec<f32> = (0..37).map(|i| i as f32 * 0.5 - 3.0).collect();
        let g: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin()).collect();
        let want: Vec<f32> = p.iter().zip(&g).map(|(&p, &g)| p - 0.1 * g).collect();
        sgd_update(&mut p, &g, 0.1);
        for (e, (got, want)) in p.iter().zip(&want).enumerate() {
            assert_eq!(
                got.to_bits(),
                want.to_bits(),
                "index {e}: expected {want}, got {got}"
            );
        }
        sgd_update(&mut [], &[], 1.0);
    }

    #[test]
    #[should_panic(expected = "sgd_update")]
    fn sgd_update_rejects_mismatched_lengths() {
        sgd_update(&mut [0.0; 3], &[0.0; 2], 0.1);
    }
}
