//! `nasp-tui nb201 ARCH...`: what NAS-Bench-201 says of a cell (its test accuracies on the
//! three data sets and their ranks among the 15,625 cells), from the table the binary carries.

use clap::Args;

use super::CliError;
use crate::exit;
use crate::nb201::{CELLS, Cell, Dataset, Entry, table};

#[derive(Args)]
pub struct Nb201Args {
    /// Cells as the benchmark writes them, e.g.
    /// '|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|'
    #[arg(value_name = "ARCH")]
    archs: Vec<String>,
    /// Also list the N best cells by CIFAR-10 test accuracy.
    #[arg(long, value_name = "N")]
    top: Option<usize>,
    /// One JSON object per line instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(a: &Nb201Args) -> Result<i32, CliError> {
    if a.archs.is_empty() && a.top.is_none() {
        return Err(CliError::Usage(
            "nb201: name a cell (e.g. '|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|') or --top N".into(),
        ));
    }
    let mut cells = Vec::new();
    for (i, s) in a.archs.iter().enumerate() {
        let cell = Cell::parse(s)
            .map_err(|e| CliError::Usage(format!("nb201: cell {} ({s:?}): {e}", i + 1)))?;
        cells.push(cell);
    }
    let t = table();
    if let Some(n) = a.top {
        let mut all: Vec<(Cell, &Entry)> = t.iter().collect();
        all.sort_by_key(|(_, e)| (e.rank(Dataset::Cifar10), e.index));
        cells.extend(all.into_iter().take(n).map(|(c, _)| c));
    }
    for cell in cells {
        let e = t.lookup(&cell);
        if a.json {
            println!("{}", json_line(&cell, &e));
        } else {
            print!("{}", text(&cell, &e));
        }
    }
    Ok(exit::OK)
}

fn text(cell: &Cell, e: &Entry) -> String {
    let mut s = format!("{cell}  (benchmark index {})\n", e.index);
    for d in Dataset::ALL {
        s += &format!(
            "  {:<15} {:>7.2} %   rank {:>6} of {CELLS}\n",
            d.name(),
            e.accuracy(d),
            e.rank(d)
        );
    }
    s
}

fn json_line(cell: &Cell, e: &Entry) -> String {
    serde_json::json!({
        "arch": cell.to_string(),
        "index": e.index,
        "cifar10_test": e.accuracy(Dataset::Cifar10),
        "cifar100_test": e.accuracy(Dataset::Cifar100),
        "imagenet16_120_test": e.accuracy(Dataset::ImageNet16),
        "rank_cifar10": e.rank(Dataset::Cifar10),
        "rank_cifar100": e.rank(Dataset::Cifar100),
        "rank_imagenet16_120": e.rank(Dataset::ImageNet16),
    })
    .to_string()
}
