//! The reference implementations' weight initialisation (`init = "reference"`): they ran on
//! PyTorch 0.3.1, whose layers drew convolution weights from U(±1/√(C_in·k_h·k_w)) with the
//! *full* C_in even for grouped (depthwise) convolutions, linear weights and biases from
//! U(±1/√in), and affine batch-norm scales from U(0, 1) with zero shifts. libtorch's defaults
//! (`init = "kaiming"`, what tch gives) start dense and 1 × 1 convolutions 2.4× and depthwise
//! ones √(6·C) larger; behind the cells' non-affine batch norms that lowers their effective
//! learning rate η/‖w‖² for most of a search (issue 11).
//!
//! Applied once after a network is built, by parameter name and shape: the names are the
//! checkpoints' keys and do not change, and a depthwise convolution is the one named `dw`.

use tch::Tensor;
use tch::nn::VarStore;

/// Which layer a parameter belongs to, and the bounds the reference draws it from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Draw {
    /// U(lo, hi).
    Uniform(f64, f64),
    /// A constant (affine batch-norm shift).
    Constant(f64),
    /// Left as it is (batch-norm running statistics).
    Keep,
}

/// The reference's draw for parameter `name` of shape `shape`.
pub fn reference_draw(name: &str, shape: &[i64]) -> Draw {
    let last = name.rsplit('.').next().unwrap_or(name);
    let is_bn = name.split('.').any(|s| s == "bn");
    match (last, shape.len()) {
        ("running_mean" | "running_var" | "num_batches_tracked", _) => Draw::Keep,
        ("weight", 1) if is_bn => Draw::Uniform(0.0, 1.0),
        ("bias", 1) if is_bn => Draw::Constant(0.0),
        // Convolution [C_out, C_in / groups, k_h, k_w].
        ("weight", 4) => {
            let depthwise = name.split('.').any(|s| s == "dw");
            let c_in = if depthwise { shape[0] } else { shape[1] };
            let b = 1.0 / ((c_in * shape[2] * shape[3]) as f64).sqrt();
            Draw::Uniform(-b, b)
        }
        // Linear [out, in] and its bias (bounded by the same fan-in, found via the weight).
        ("weight", 2) => {
            let b = 1.0 / (shape[1] as f64).sqrt();
            Draw::Uniform(-b, b)
        }
        _ => Draw::Keep,
    }
}

/// Re-draws every parameter of `vs` as the reference does (seeded by libtorch's generator).
pub fn apply_reference(vs: &VarStore) {
    let vars = vs.variables();
    let mut names: Vec<&String> = vars.keys().collect();
    // A fixed order, so that a seed gives the same weights every time.
    names.sort();
    tch::no_grad(|| {
        for name in names {
            let t = &vars[name];
            let draw = match reference_draw(name, &t.size()) {
                // A linear bias: U(±1/√in) of its weight.
                Draw::Keep if name.ends_with(".bias") && t.dim() == 1 => linear_bias(&vars, name),
                d => d,
            };
            fill(t, draw);
        }
    });
}

fn linear_bias(vars: &std::collections::HashMap<String, Tensor>, bias: &str) -> Draw {
    let weight = format!("{}weight", bias.trim_end_matches("bias"));
    match vars.get(&weight).map(Tensor::size).as_deref() {
        Some([_, fan_in]) => {
            let b = 1.0 / (*fan_in as f64).sqrt();
            Draw::Uniform(-b, b)
        }
        _ => Draw::Keep,
    }
}

fn fill(t: &Tensor, draw: Draw) {
    let mut t = t.shallow_clone();
    match draw {
        Draw::Uniform(lo, hi) => {
            let _ = t.uniform_(lo, hi);
        }
        Draw::Constant(v) => {
            let _ = t.fill_(v);
        }
        Draw::Keep => {}
    }
}
