//! Optimizers: torch.optim's SGD, Adam, AdamW, RMSprop and Adagrad, as hyper-parameters plus
//! the state arrays each one needs, applied segment by segment with the fused kernels of
//! `edgegrad_kernels::optim`.
//!
//! State lives in one arena owned by the model (sized by [`Optimizer::state_roles`] at compile):
//! role r of a parameter arena of P floats occupies `state[r·P .. (r+1)·P]`, in the same layout as
//! the parameters, so a segment's state is the same offset range in each role.
//! - sgd: momentum buffer (only when momentum ≠ 0)
//! - adam / adamw: exp_avg, exp_avg_sq, max_exp_avg_sq (only with amsgrad)
//! - rmsprop: square_avg, grad_avg (only when centered), momentum_buffer (only when momentum > 0)
//! - adagrad: sum (starts at initial_accumulator_value)

use crate::error::{NnError, Result};
use edgegrad_kernels::optim::{adagrad_update, adam_update, rmsprop_update, sgd_update, Adagrad, Adam, GradPrep, Rmsprop, Sgd};

/// Optimizer kinds as the ABI numbers them.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerKind {
    Sgd = 0,
    Adam = 1,
    AdamW = 2,
    Rmsprop = 3,
    Adagrad = 4,
}

impl OptimizerKind {
    pub const ALL: [OptimizerKind; 5] = [OptimizerKind::Sgd, OptimizerKind::Adam, OptimizerKind::AdamW, OptimizerKind::Rmsprop, OptimizerKind::Adagrad];

    pub fn from_u32(id: u32) -> Option<OptimizerKind> {
        OptimizerKind::ALL.get(id as usize).copied()
    }

    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
            OptimizerKind::AdamW => "adamw",
            OptimizerKind::Rmsprop => "rmsprop",
            OptimizerKind::Adagrad => "adagrad",
        }
    }

    /// The hyper-parameters `eg_model_compile` takes for this kind, in order (TS option names).
    pub fn hyper_parameters(self) -> &'static [&'static str] {
        match self {
            OptimizerKind::Sgd => &["lr", "momentum", "dampening", "weightDecay", "nesterov"],
            OptimizerKind::Adam | OptimizerKind::AdamW => &["lr", "betas[0]", "betas[1]", "eps", "weightDecay", "amsgrad"],
            OptimizerKind::Rmsprop => &["lr", "alpha", "eps", "weightDecay", "momentum", "centered"],
            OptimizerKind::Adagrad => &["lr", "lrDecay", "weightDecay", "initialAccumulatorValue", "eps"],
        }
    }
}

/// An optimizer with its hyper-parameters (lr is the base rate; parameter groups scale it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    Sgd(Sgd),
    /// Adam when `decoupled` is false, AdamW when true.
    Adam(Adam),
    Rmsprop(Rmsprop),
    Adagrad(Adagrad),
}

impl Optimizer {
    /// Plain SGD (no momentum, no weight decay).
    pub fn sgd(lr: f32) -> Optimizer {
        Optimizer::Sgd(Sgd { lr, momentum: 0.0, dampening: 0.0, weight_decay: 0.0, nesterov: false })
    }

    /// Decodes the ABI form: a kind id and its f32 hyper-parameters in the order of
    /// [`OptimizerKind::hyper_parameters`]; flags are 0 or 1. Validates everything.
    pub fn from_abi(kind: u32, hp: &[f32]) -> Result<Optimizer> {
        let kind = OptimizerKind::from_u32(kind).ok_or_else(|| NnError::invalid(format!("optimizer: unknown kind {kind}")))?;
        let names = kind.hyper_parameters();
        if hp.len() != names.len() {
            return Err(NnError::invalid(format!(
                "optimizer: {} takes {} hyper-parameters ({}), got {}",
                kind.name(),
                names.len(),
                names.join(", "),
                hp.len()
            )));
        }
        let flag = |i: usize| -> Result<bool> {
            match hp[i] {
                0.0 => Ok(false),
                1.0 => Ok(true),
                v => Err(NnError::invalid(format!("{}.{}: must be 0 or 1, got {v}", kind.name(), names[i]))),
            }
        };
        let opt = match kind {
            OptimizerKind::Sgd => Optimizer::Sgd(Sgd { lr: hp[0], momentum: hp[1], dampening: hp[2], weight_decay: hp[3], nesterov: flag(4)? }),
            OptimizerKind::Adam | OptimizerKind::AdamW => Optimizer::Adam(Adam {
                lr: hp[0],
                beta1: hp[1],
                beta2: hp[2],
                eps: hp[3],
                weight_decay: hp[4],
                decoupled: kind == OptimizerKind::AdamW,
                amsgrad: flag(5)?,
            }),
            OptimizerKind::Rmsprop => {
                Optimizer::Rmsprop(Rmsprop { lr: hp[0], alpha: hp[1], eps: hp[2], weight_decay: hp[3], momentum: hp[4], centered: flag(5)? })
            }
            OptimizerKind::Adagrad => {
                Optimizer::Adagrad(Adagrad { lr: hp[0], lr_decay: hp[1], weight_decay: hp[2], initial_accumulator_value: hp[3], eps: hp[4] })
            }
        };
        opt.validate()?;
        Ok(opt)
    }

    pub fn kind(&self) -> OptimizerKind {
        match self {
            Optimizer::Sgd(_) => OptimizerKind::Sgd,
            Optimizer::Adam(a) if a.decoupled => OptimizerKind::AdamW,
            Optimizer::Adam(_) => OptimizerKind::Adam,
            Optimizer::Rmsprop(_) => OptimizerKind::Rmsprop,
            Optimizer::Adagrad(_) => OptimizerKind::Adagrad,
        }
    }

    /// Base learning rate.
    pub fn lr(&self) -> f32 {
        match self {
            Optimizer::Sgd(h) => h.lr,
            Optimizer::Adam(h) => h.lr,
            Optimizer::Rmsprop(h) => h.lr,
            Optimizer::Adagrad(h) => h.lr,
        }
    }

    /// Sets the base learning rate (finite, ≥ 0); state is untouched.
    pub fn set_lr(&mut self, lr: f32) -> Result<()> {
        check_non_negative("lr", lr)?;
        match self {
            Optimizer::Sgd(h) => h.lr = lr,
            Optimizer::Adam(h) => h.lr = lr,
            Optimizer::Rmsprop(h) => h.lr = lr,
            Optimizer::Adagrad(h) => h.lr = lr,
        }
        Ok(())
    }

    /// The weight decay every parameter group starts with (L2, or decoupled for AdamW).
    pub fn weight_decay(&self) -> f32 {
        match self {
            Optimizer::Sgd(h) => h.weight_decay,
            Optimizer::Adam(h) => h.weight_decay,
            Optimizer::Rmsprop(h) => h.weight_decay,
            Optimizer::Adagrad(h) => h.weight_decay,
        }
    }

    /// Checks every hyper-parameter as torch.optim's constructors do (finite, and: lr, eps,
    /// momentum, weight decay, alpha, lr decay, initial accumulator ≥ 0; 0 ≤ betas < 1;
    /// nesterov needs momentum > 0 and dampening = 0).
    pub fn validate(&self) -> Result<()> {
        let name = self.kind().name();
        let field = |f: &'static str| Field(name, f);
        check_non_negative(field("lr"), self.lr())?;
        check_non_negative(field("weightDecay"), self.weight_decay())?;
        match self {
            Optimizer::Sgd(h) => {
                check_non_negative(field("momentum"), h.momentum)?;
                check_finite(field("dampening"), h.dampening)?;
                if h.nesterov && (h.momentum <= 0.0 || h.dampening != 0.0) {
                    return Err(NnError::invalid(format!(
                        "{}: nesterov momentum requires momentum > 0 and dampening = 0, got momentum {} and dampening {}",
                        field("nesterov"),
                        h.momentum,
                        h.dampening
                    )));
                }
            }
            Optimizer::Adam(h) => {
                check_beta(field("betas[0]"), h.beta1)?;
                check_beta(field("betas[1]"), h.beta2)?;
                check_non_negative(field("eps"), h.eps)?;
            }
            Optimizer::Rmsprop(h) => {
                check_non_negative(field("alpha"), h.alpha)?;
                check_non_negative(field("eps"), h.eps)?;
                check_non_negative(field("momentum"), h.momentum)?;
            }
            Optimizer::Adagrad(h) => {
                check_non_negative(field("lrDecay"), h.lr_decay)?;
                check_non_negative(field("initialAccumulatorValue"), h.initial_accumulator_value)?;
                check_non_negative(field("eps"), h.eps)?;
            }
        }
        Ok(())
    }

    /// How many parameter-sized state arrays this optimizer keeps (0 to 3).
    pub fn state_roles(&self) -> usize {
        match self {
            Optimizer::Sgd(h) => usize::from(h.momentum != 0.0),
            Optimizer::Adam(h) => 2 + usize::from(h.amsgrad),
            Optimizer::Rmsprop(h) => 1 + usize::from(h.centered) + usize::from(h.momentum > 0.0),
            Optimizer::Adagrad(_) => 1,
        }
    }

    /// Names of the state roles, in arena order.
    pub fn state_role_names(&self) -> &'static [&'static str] {
        let all: &'static [&'static str] = match self {
            Optimizer::Sgd(_) => &["momentum_buffer"],
            Optimizer::Adam(_) => &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
            Optimizer::Rmsprop(h) if h.centered => &["square_avg", "grad_avg", "momentum_buffer"],
            Optimizer::Rmsprop(_) => &["square_avg", "momentum_buffer"],
            Optimizer::Adagrad(_) => &["sum"],
        };
        &all[..self.state_roles()]
    }

    /// Writes the initial state (zeros; Adagrad's sums start at initial_accumulator_value).
    pub fn init_state(&self, state: &mut [f32]) {
        let v = match self {
            Optimizer::Adagrad(h) => h.initial_accumulator_value,
            _ => 0.0,
        };
        state.fill(v);
    }

    /// One update of a segment: p, g (n) at element `offset` of a parameter arena of `p_len`
    /// floats, whose state arena (`state_roles() · p_len` floats) is `state`. `lr_scale` and
    /// `weight_decay` are the segment's parameter group; `step` is this update's 1-based step.
    /// Returns Σ Δp² (f64).
    pub fn update_segment(
        &self,
        state: &mut [f32],
        p_len: usize,
        offset: usize,
        p: &mut [f32],
        g: &[f32],
        lr_scale: f32,
        weight_decay: f32,
        prep: GradPrep,
        step: u64,
    ) -> f64 {
        let [a, b, c] = role_slices(state, p_len, offset, p.len());
        match *self {
            Optimizer::Sgd(h) => sgd_update(p, g, a, &Sgd { lr: h.lr * lr_scale, weight_decay, ..h }, prep, step == 1),
            Optimizer::Adam(h) => adam_update(p, g, a, b, c, &Adam { lr: h.lr * lr_scale, weight_decay, ..h }, prep, step),
            Optimizer::Rmsprop(h) => {
                let (grad_avg, buf) = if h.centered { (b, c) } else { (c, b) };
                rmsprop_update(p, g, a, grad_avg, buf, &Rmsprop { lr: h.lr * lr_scale, weight_decay, ..h }, prep)
            }
            Optimizer::Adagrad(h) => adagrad_update(p, g, a, &Adagrad { lr: h.lr * lr_scale, weight_decay, ..h }, prep, step),
        }
    }
}

/// The segment [offset, offset+n) of each of the (up to 3) roles in `state`; missing roles are empty.
fn role_slices(state: &mut [f32], p_len: usize, offset: usize, n: usize) -> [&mut [f32]; 3] {
    let mut out: [&mut [f32]; 3] = [&mut [], &mut [], &mut []];
    if p_len == 0 {
        return out;
    }
    let mut rest = state;
    for slot in &mut out {
        if rest.len() < p_len {
            break;
        }
        let (role, tail) = core::mem::take(&mut rest).split_at_mut(p_len);
        *slot = &mut role[offset..offset + n];
        rest = tail;
    }
    out
}

/// A hyper-parameter's name in messages ("sgd.lr"), formatted only when a check fails: building
/// the strings up front ran the formatting code on every compile(), which V8 then had to
/// compile on the first one (cold start).
#[derive(Clone, Copy)]
struct Field<'a>(&'a str, &'static str);

impl core::fmt::Display for Field<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

fn check_finite(name: impl core::fmt::Display, v: f32) -> Result<()> {
    if !v.is_finite() {
        return Err(NnError::invalid(format!("{name}: must be finite, got {v}")));
    }
    Ok(())
}

fn check_non_negative(name: impl core::fmt::Display, v: f32) -> Result<()> {
    if !v.is_finite() || v < 0.0 {
        return Err(NnError::invalid(format!("{name}: must be finite and >= 0, got {v}")));
    }
    Ok(())
}

fn check_beta(name: impl core::fmt::Display, v: f32) -> Result<()> {
    if !(0.0..1.0).contains(&v) {
        return Err(NnError::invalid(format!("{name}: must be in [0, 1), got {v}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abi_form_round_trips_and_validates() {
        let sgd = Optimizer::from_abi(0, &[0.1, 0.9, 0.0, 1e-4, 1.0]).unwrap();
        assert_eq!(sgd.kind(), OptimizerKind::Sgd);
        assert_eq!(sgd.state_roles(), 1);
        assert_eq!(Optimizer::from_abi(0, &[0.1, 0.0, 0.0, 0.0, 0.0]).unwrap().state_roles(), 0);
        let adamw = Optimizer::from_abi(2, &[1e-3, 0.9, 0.999, 1e-8, 1e-2, 1.0]).unwrap();
        assert_eq!(adamw.kind(), OptimizerKind::AdamW);
        assert_eq!(adamw.state_role_names(), &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]);
        let rms = Optimizer::from_abi(3, &[1e-2, 0.99, 1e-8, 0.0, 0.9, 0.0]).unwrap();
        assert_eq!(rms.state_role_names(), &["square_avg", "momentum_buffer"]);
        let ada = Optimizer::from_abi(4, &[1e-2, 0.0, 0.0, 0.1, 1e-10]).unwrap();
        let mut st = [0.0; 3];
        ada.init_state(&mut st);
        assert_eq!(st, [0.1; 3]);

        let bad: &[(u32, &[f32], &str)] = &[
            (5, &[0.1], "unknown kind"),
            (0, &[0.1], "takes 5"),
            (0, &[f32::NAN, 0.0, 0.0, 0.0, 0.0], "sgd.lr"),
            (0, &[0.1, -0.5, 0.0, 0.0, 0.0], "sgd.momentum"),
            (0, &[0.1, 0.0, 0.0, 0.0, 1.0], "nesterov"),
            (0, &[0.1, 0.9, 0.1, 0.0, 1.0], "nesterov"),
            (0, &[0.1, 0.9, 0.0, 0.0, 0.5], "sgd.nesterov: must be 0 or 1"),
            (1, &[1e-3, 1.0, 0.999, 1e-8, 0.0, 0.0], "adam.betas[0]"),
            (1, &[1e-3, 0.9, -0.1, 1e-8, 0.0, 0.0], "adam.betas[1]"),
            (2, &[1e-3, 0.9, 0.999, -1e-8, 0.0, 0.0], "adamw.eps"),
            (1, &[1e-3, 0.9, 0.999, 1e-8, f32::INFINITY, 0.0], "adam.weightDecay"),
            (3, &[1e-2, -0.99, 1e-8, 0.0, 0.0, 0.0], "rmsprop.alpha"),
            (3, &[1e-2, 0.99, 1e-8, 0.0, 0.0, 2.0], "rmsprop.centered"),
            (4, &[1e-2, -1.0, 0.0, 0.0, 1e-10], "adagrad.lrDecay"),
            (4, &[1e-2, 0.0, 0.0, -0.1, 1e-10], "adagrad.initialAccumulatorValue"),
        ];
        for &(kind, hp, want) in bad {
            let e = Optimizer::from_abi(kind, hp).unwrap_err();
            assert!(e.message.contains(want), "kind {kind} {hp:?}: {}", e.message);
        }
    }

    #[test]
    fn set_lr_keeps_everything_else() {
        let mut o = Optimizer::from_abi(1, &[1e-3, 0.9, 0.999, 1e-8, 0.1, 0.0]).unwrap();
        o.set_lr(0.5).unwrap();
        assert_eq!(o.lr(), 0.5);
        assert_eq!(o.weight_decay(), 0.1);
        assert!(o.set_lr(-1.0).is_err());
        assert!(o.set_lr(f32::NAN).is_err());
        assert_eq!(o.lr(), 0.5);
    }
}
