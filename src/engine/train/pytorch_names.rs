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

#[cfg(test)]
mod tests {
    use super::*;

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
