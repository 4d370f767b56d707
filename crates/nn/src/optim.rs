//! Optimizers: hyper-parameters plus any state, applied as one pass over the parameter arena.
//! Semantics follow torch.optim.

use crate::error::{NnError, Result};
use edgegrad_kernels::optim::sgd_update;

/// Optimizer kinds as the ABI numbers them.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerKind {
    Sgd = 0,
}

impl OptimizerKind {
    pub const ALL: [OptimizerKind; 1] = [OptimizerKind::Sgd];

    pub fn from_u32(id: u32) -> Option<OptimizerKind> {
        OptimizerKind::ALL.get(id as usize).copied()
    }

    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
        }
    }
}

/// An optimizer with its hyper-parameters.
#[derive(Clone, Debug, PartialEq)]
pub enum Optimizer {
    /// Plain stochastic gradient descent: p ← p − lr·g (torch.optim.SGD with no momentum).
    Sgd { lr: f32 },
}

impl Optimizer {
    /// Decodes the ABI form: a kind id and its f32 hyper-parameters (`sgd`: [lr]).
    pub fn from_abi(kind: u32, hp: &[f32]) -> Result<Optimizer> {
        let kind = OptimizerKind::from_u32(kind).ok_or_else(|| NnError::invalid(format!("optimizer: unknown kind {kind}")))?;
        let opt = match kind {
            OptimizerKind::Sgd => {
                if hp.len() != 1 {
                    return Err(NnError::invalid(format!("optimizer: sgd takes 1 hyper-parameter (lr), got {}", hp.len())));
                }
                Optimizer::Sgd { lr: hp[0] }
            }
        };
        opt.validate()?;
        Ok(opt)
    }

    pub fn kind(&self) -> OptimizerKind {
        match self {
            Optimizer::Sgd { .. } => OptimizerKind::Sgd,
        }
    }

    /// Learning rate.
    pub fn lr(&self) -> f32 {
        match self {
            Optimizer::Sgd { lr } => *lr,
        }
    }

    /// Rejects non-finite or negative hyper-parameters.
    pub fn validate(&self) -> Result<()> {
        let lr = self.lr();
        if !lr.is_finite() || lr < 0.0 {
            return Err(NnError::invalid(format!("lr: must be finite and >= 0, got {lr}")));
        }
        Ok(())
    }

    /// Applies one update to the whole parameter arena.
    pub fn update(&mut self, params: &mut [f32], grads: &[f32]) {
        match self {
            Optimizer::Sgd { lr } => sgd_update(params, grads, *lr),
        }
    }
}
