//! The names the DARTS reference's `NetworkCIFAR` gives the variables of the evaluation network
//! (`stem.0.weight`, `cells.3.preprocess0.op.1.weight`, `cells.3._ops.2.op.5.weight`,
//! `auxiliary_head.features.2.weight`, `classifier.weight`, ...), from ours
//! (`net.stem.conv.weight`, `net.cells.3.pre0.conv.weight`, `net.cells.3.ops.2.b.dw.weight`,
//! `net.aux.c1.weight`, `net.classifier.weight`): so that weights written under them load into
//! `NetworkCIFAR(C, 10, layers, auxiliary, genotype)` (only `num_batches_tracked` is absent).
//!
//! The layer indices are those of the reference's `nn.Sequential`s: ReLUConvBN (ReLU, conv, BN)
//! → 1, 2; SepConv (two ReLU-depthwise-pointwise-BN stacks) → 1, 2, 3 and 5, 6, 7; DilConv →
//! 1, 2, 3; FactorizedReduce → `conv_1`, `conv_2`, `bn`; the auxiliary head (ReLU, pool, conv,
//! BN, ReLU, conv, BN, ReLU) → `features.2`, `.3`, `.5`, `.6`.

/// The reference's name for our variable `name`; `None` for a variable the reference network
/// has no counterpart of (the NASP space's own ops).
pub fn darts_name(name: &str) -> Option<String> {
    let rest = name.strip_prefix("net.")?;
    let (head, leaf) = rest.rsplit_once('.')?;
    let parts: Vec<&str> = head.split('.').collect();
    let mapped: String = match parts.as_slice() {
        ["stem", "conv"] => "stem.0".into(),
        ["stem", "bn"] => "stem.1".into(),
        ["classifier"] => "classifier".into(),
        ["aux", "c1"] => "auxiliary_head.features.2".into(),
        ["aux", "c1", "bn"] => "auxiliary_head.features.3".into(),
        ["aux", "c2"] => "auxiliary_head.features.5".into(),
        ["aux", "c2", "bn"] => "auxiliary_head.features.6".into(),
        ["aux", "fc"] => "auxiliary_head.classifier".into(),
        ["cells", i, pre @ ("pre0" | "pre1"), layer] => {
            let which = if *pre == "pre0" { 0 } else { 1 };
            let at = match *layer {
                // ReLUConvBN; its batch norm `op.2`, or a FactorizedReduce's `bn` (told apart
                // by the other names: see `darts_names`).
                "conv" => "op.1",
                "bn" => "op.2",
                // FactorizedReduce (after a reduction cell).
                "c1" => "conv_1",
                "c2" => "conv_2",
                _ => return None,
            };
            format!("cells.{i}.preprocess{which}.{at}")
        }
        ["cells", i, "ops", k, block, layer] => {
            let at = match (*block, *layer) {
                ("a", "dw") | ("d", "dw") => "op.1",
                ("a", "pw") | ("d", "pw") => "op.2",
                ("a", "bn") | ("d", "bn") => "op.3",
                ("b", "dw") => "op.5",
                ("b", "pw") => "op.6",
                ("b", "bn") => "op.7",
                ("fr", "c1") => "conv_1",
                ("fr", "c2") => "conv_2",
                ("fr", "bn") => "bn",
                _ => return None,
            };
            format!("cells.{i}._ops.{k}.{at}")
        }
        _ => return None,
    };
    Some(format!("{mapped}.{leaf}"))
}

/// The reference's names of `names` (in order), or the first name that has none.
pub fn darts_names(names: &[&str]) -> Result<Vec<String>, String> {
    let reduces: Vec<&str> = names
        .iter()
        .filter_map(|n| n.strip_suffix(".c1.weight"))
        .collect();
    names
        .iter()
        .map(|n| {
            let mut mapped = darts_name(n).ok_or_else(|| (*n).to_string())?;
            // The batch norm of a FactorizedReduce preprocessing is its `bn`, not `op.2`.
            if let Some((prefix, leaf)) = n.rsplit_once(".bn.")
                && (prefix.ends_with(".pre0") || prefix.ends_with(".pre1"))
                && reduces.contains(&prefix)
                && let Some(base) = mapped.strip_suffix(&format!(".op.2.{leaf}"))
            {
                mapped = format!("{base}.bn.{leaf}");
            }
            Ok(mapped)
        })
        .collect()
}

/// The name NAS-Bench-201's own network (`TinyNetwork(C, N, genotype, classes)` of its
/// `xautodl` package) gives our NB201 variable `name`, for `n` cells per stage; `None` for a
/// variable it has no counterpart of.
///
/// Its `cells` list holds the cells and the two residual blocks in network order (stage 0's
/// `n` cells, a block, stage 1's, a block, stage 2's), so our cell `j` is its `j + j / n` and
/// our block `s` its `(s + 1) * n + s`. A cell's `layers` are its six edges in order (one op
/// each); a ReLUConvBN is (ReLU, conv, BN) → `op.1`, `op.2`; a block's shortcut is (pool, conv)
/// → `downsample.1`; the final batch norm is `lastact.0`.
pub fn nb201_name(name: &str, n: usize) -> Option<String> {
    let rest = name.strip_prefix("net.")?;
    let (head, leaf) = rest.rsplit_once('.')?;
    let parts: Vec<&str> = head.split('.').collect();
    let layer = |l: &str| match l {
        "conv" => Some("op.1"),
        "bn" => Some("op.2"),
        _ => None,
    };
    let mapped = match parts.as_slice() {
        ["stem", "conv"] => "stem.0".to_string(),
        ["stem", "bn"] => "stem.1".to_string(),
        ["last_bn"] => "lastact.0".to_string(),
        ["classifier"] => "classifier".to_string(),
        ["cells", j, "edges", e, _op, l] => {
            let j: usize = j.parse().ok()?;
            format!("cells.{}.layers.{e}.{}", j + j / n.max(1), layer(l)?)
        }
        ["res", s, half, l] => {
            let s: usize = s.parse().ok()?;
            let at = match *half {
                "a" => "conv_a",
                "b" => "conv_b",
                _ => return None,
            };
            format!("cells.{}.{at}.{}", (s + 1) * n + s, layer(l)?)
        }
        ["res", s, "down"] => {
            let s: usize = s.parse().ok()?;
            format!("cells.{}.downsample.1", (s + 1) * n + s)
        }
        _ => return None,
    };
    Some(format!("{mapped}.{leaf}"))
}

/// The benchmark's names of `names` (in order), or the first name that has none.
pub fn nb201_names(names: &[&str], n: usize) -> Result<Vec<String>, String> {
    names
        .iter()
        .map(|x| nb201_name(x, n).ok_or_else(|| (*x).to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nb201_names_of_each_block() {
        let n = 5;
        let cases = [
            ("net.stem.conv.weight", "stem.0.weight"),
            ("net.stem.bn.running_mean", "stem.1.running_mean"),
            (
                "net.cells.0.edges.0.3.conv.weight",
                "cells.0.layers.0.op.1.weight",
            ),
            (
                "net.cells.4.edges.5.2.bn.bias",
                "cells.4.layers.5.op.2.bias",
            ),
            (
                "net.cells.5.edges.2.3.conv.weight",
                "cells.6.layers.2.op.1.weight",
            ),
            (
                "net.cells.14.edges.1.3.bn.running_var",
                "cells.16.layers.1.op.2.running_var",
            ),
            ("net.res.0.a.conv.weight", "cells.5.conv_a.op.1.weight"),
            ("net.res.1.b.bn.weight", "cells.11.conv_b.op.2.weight"),
            ("net.res.1.down.weight", "cells.11.downsample.1.weight"),
            ("net.last_bn.bias", "lastact.0.bias"),
            ("net.classifier.weight", "classifier.weight"),
        ];
        for (ours, theirs) in cases {
            assert_eq!(nb201_name(ours, n).as_deref(), Some(theirs), "{ours}");
        }
        assert_eq!(nb201_name("net.cells.0.pre0.conv.weight", n), None);
        assert_eq!(
            nb201_names(&["net.stem.conv.weight", "net.aux.fc.bias"], n),
            Err("net.aux.fc.bias".to_string())
        );
    }

    #[test]
    fn names_of_each_block() {
        let cases = [
            ("net.stem.conv.weight", "stem.0.weight"),
            ("net.stem.bn.running_var", "stem.1.running_var"),
            (
                "net.cells.0.pre1.conv.weight",
                "cells.0.preprocess1.op.1.weight",
            ),
            ("net.cells.0.pre1.bn.bias", "cells.0.preprocess1.op.2.bias"),
            (
                "net.cells.2.pre0.c2.weight",
                "cells.2.preprocess0.conv_2.weight",
            ),
            (
                "net.cells.2.ops.0.b.pw.weight",
                "cells.2._ops.0.op.6.weight",
            ),
            (
                "net.cells.2.ops.7.d.bn.weight",
                "cells.2._ops.7.op.3.weight",
            ),
            (
                "net.cells.1.ops.3.fr.c1.weight",
                "cells.1._ops.3.conv_1.weight",
            ),
            (
                "net.aux.c2.bn.running_mean",
                "auxiliary_head.features.6.running_mean",
            ),
            ("net.aux.fc.bias", "auxiliary_head.classifier.bias"),
            ("net.classifier.weight", "classifier.weight"),
        ];
        for (ours, theirs) in cases {
            assert_eq!(darts_name(ours).as_deref(), Some(theirs), "{ours}");
        }
        assert_eq!(darts_name("net.cells.0.ops.1.c.conv.weight"), None);
        let got = darts_names(&[
            "net.cells.2.pre0.c1.weight",
            "net.cells.2.pre0.bn.weight",
            "net.cells.3.pre0.bn.weight",
        ])
        .unwrap();
        assert_eq!(got[1], "cells.2.preprocess0.bn.weight");
        assert_eq!(got[2], "cells.3.preprocess0.op.2.weight");
    }
}
