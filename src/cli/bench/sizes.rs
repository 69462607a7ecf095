//! `nasp-tui bench --sizes`: our NASP and DARTS first order beside the PyTorch peer's over a
//! table of sizes (channels × cells × batch), in rounds, with medians, ratios and the speed
//! targets of BENCHMARKS.md checked per row.
//!
//! Each round visits every size once (ours, then the peer's, each algorithm in a process of its
//! own), so a slow spell of a shared machine spreads over the sizes instead of landing on one.

use std::fmt::Write as _;
use std::path::Path;

use super::BenchArgs;
use super::child::run_child;
use super::peer::peer_figures;
use crate::cli::CliError;
use crate::config::{Algorithm, Config};

/// Issue 28's table: C ∈ {8, 10, 12, 16, 36} (36 is the paper's evaluation width), cells ∈
/// {5, 8}, batch ∈ {16, 32, 64}.
pub const DEFAULT_SIZES: &str = "8,10,12,16,36/5,8/16,32,64";

/// Targets on the CPU (issue 28): NASP ≤ 0.3 × the peer's NASP and ≤ 0.12 × the peer's DARTS
/// first order, our DARTS first order ≤ 0.8 × the peer's, NASP's peak RSS ≤ 0.5 × the peer's.
const TARGETS: [f64; 4] = [0.3, 0.12, 0.8, 0.5];

/// One size of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub channels: i64,
    pub cells: usize,
    pub batch: usize,
}

/// Parses `C,C,.../CELLS,.../BATCH,...` into every combination, in that order.
pub fn parse_sizes(spec: &str) -> Result<Vec<Size>, String> {
    let parts: Vec<&str> = spec.split('/').collect();
    let [c, n, b] = parts.as_slice() else {
        return Err(format!(
            "--sizes {spec:?}: give channels/cells/batches, e.g. {DEFAULT_SIZES}"
        ));
    };
    let list = |what: &str, text: &str| -> Result<Vec<usize>, String> {
        text.split(',')
            .map(|v| match v.trim().parse::<usize>() {
                Ok(x) if x > 4096 => Err(format!("--sizes {spec:?}: {what} {x} is too large")),
                Ok(x) if x > 0 => Ok(x),
                _ => Err(format!(
                    "--sizes {spec:?}: {what} {v:?} is not a positive whole number"
                )),
            })
            .collect()
    };
    let (cs, ns, bs) = (list("channels", c)?, list("cells", n)?, list("batch", b)?);
    let mut out = Vec::new();
    for &channels in &cs {
        let channels = channels as i64;
        for &cells in &ns {
            for &batch in &bs {
                out.push(Size {
                    channels,
                    cells,
                    batch,
                });
            }
        }
    }
    Ok(out)
}

/// What was measured for one size: per figure, one value per round that produced it.
#[derive(Debug, Default, Clone)]
struct Row {
    nasp_ms: Vec<f64>,
    nasp_rss: Vec<f64>,
    darts1_ms: Vec<f64>,
    peer_nasp_ms: Vec<f64>,
    peer_nasp_rss: Vec<f64>,
    peer_darts1_ms: Vec<f64>,
    /// Why a part of this size could not run (out of memory, say).
    failed: Vec<String>,
}

impl Row {
    /// The last figure of each of ours and the peer's, in ms/step ("–" for none).
    fn latest(&self) -> String {
        let last = |v: &[f64]| v.last().map_or("–".to_string(), |x| format!("{x:.1}"));
        format!(
            "nasp {}, darts1 {}, peer nasp {}, peer darts1 {} ms/step",
            last(&self.nasp_ms),
            last(&self.darts1_ms),
            last(&self.peer_nasp_ms),
            last(&self.peer_darts1_ms)
        )
    }
}

/// Runs the table and prints it as Markdown; the peer script is required.
pub fn run(a: &BenchArgs, cfg: &Config, spec: &str, peer: &Path) -> Result<i32, CliError> {
    let sizes = parse_sizes(spec).map_err(CliError::Usage)?;
    let rounds = a.rounds.max(1);
    let mut rows = vec![Row::default(); sizes.len()];
    for round in 1..=rounds {
        for (size, row) in sizes.iter().zip(rows.iter_mut()) {
            eprintln!(
                "round {round}/{rounds}: C={} cells={} batch={}",
                size.channels, size.cells, size.batch
            );
            measure(a, cfg, *size, peer, row)?;
            // What this size just measured, at once: a table of hours shows its progress, and
            // a run cut short mid-round still leaves its figures in the log.
            eprintln!("  {}", row.latest());
        }
        // A long table (hours on a small machine) keeps what each round measured: the table so
        // far goes to stderr, so an interrupted run still has it.
        if round < rounds {
            eprint!("{}", table(cfg, &sizes, &rows, round, a.steps));
        }
    }
    print!("{}", table(cfg, &sizes, &rows, rounds, a.steps));
    Ok(crate::exit::OK)
}

/// One round of one size: ours (NASP, DARTS first order), then the peer's.
fn measure(
    a: &BenchArgs,
    cfg: &Config,
    size: Size,
    peer: &Path,
    row: &mut Row,
) -> Result<(), CliError> {
    let sets = vec![
        format!("model.channels={}", size.channels),
        format!("model.cells={}", size.cells),
        format!("train.batch_size={}", size.batch),
    ];
    for alg in [Algorithm::Nasp, Algorithm::Darts1] {
        match run_child(a, alg, &sets)? {
            Ok(r) if alg == Algorithm::Nasp => {
                row.nasp_ms.push(r.ms_median);
                row.nasp_rss.push(r.peak_rss_mb);
            }
            Ok(r) => row.darts1_ms.push(r.ms_median),
            Err(why) => {
                // The table goes on with the other sizes; this one's cell says it failed.
                eprintln!("error: {why}");
                row.failed.push(format!("ours {}", alg.name()));
            }
        }
    }
    let mut sized = cfg.clone();
    sized.model.channels = size.channels;
    sized.model.cells = size.cells;
    sized.train.batch_size = size.batch;
    for alg in ["nasp", "darts1"] {
        match peer_figures(peer, &sized, a.steps, alg)? {
            Ok((ms, rss)) if alg == "nasp" => {
                row.peer_nasp_ms.push(ms);
                row.peer_nasp_rss.push(rss);
            }
            Ok((ms, _)) => row.peer_darts1_ms.push(ms),
            Err(why) => row.failed.push(format!("peer {alg}: {why}")),
        }
    }
    Ok(())
}

/// The median of what was measured (NaN for nothing).
fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The Markdown table: medians, the four ratios with ✓/✗ against their targets, and a count of
/// the rows that meet all of them.
fn table(cfg: &Config, sizes: &[Size], rows: &[Row], rounds: usize, steps: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "sizes: {:?} images {}px, space {:?}, {rounds} rounds of {steps} timed steps each; medians in ms/step",
        cfg.data.dataset, cfg.data.image_size, cfg.model.space
    );
    let [t_nasp, t_darts, t_ours, t_rss] = TARGETS;
    let _ = writeln!(
        out,
        "\n| C | cells | batch | nasp | darts1 | peer nasp | peer darts1 | nasp/peer nasp (≤ {t_nasp}) | nasp/peer darts1 (≤ {t_darts}) | darts1/peer darts1 (≤ {t_ours}) | RSS nasp/peer (≤ {t_rss}) |",
    );
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|\n");
    let mut met = 0;
    let mut complete = 0;
    for (s, r) in sizes.iter().zip(rows) {
        let (n, d) = (median(&r.nasp_ms), median(&r.darts1_ms));
        let (pn, pd) = (median(&r.peer_nasp_ms), median(&r.peer_darts1_ms));
        let ratios = [
            n / pn,
            n / pd,
            d / pd,
            median(&r.nasp_rss) / median(&r.peer_nasp_rss),
        ];
        let cell = |x: f64, target: f64| {
            if x.is_finite() {
                format!("{x:.3} {}", if x <= target { "✓" } else { "✗" })
            } else {
                "–".to_string()
            }
        };
        let ms = |x: f64| {
            if x.is_finite() {
                format!("{x:.1}")
            } else {
                "–".to_string()
            }
        };
        let _ = write!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            s.channels,
            s.cells,
            s.batch,
            ms(n),
            ms(d),
            ms(pn),
            ms(pd)
        );
        for (x, t) in ratios.iter().zip(TARGETS) {
            let _ = write!(out, " {} |", cell(*x, t));
        }
        out.push('\n');
        if ratios.iter().all(|x| x.is_finite()) {
            complete += 1;
            met += usize::from(ratios.iter().zip(TARGETS).all(|(x, t)| *x <= t));
        }
    }
    for (s, r) in sizes.iter().zip(rows) {
        for f in &r.failed {
            let _ = writeln!(
                out,
                "\nC={} cells={} batch={}: {f} did not run",
                s.channels, s.cells, s.batch
            );
        }
    }
    let _ = writeln!(
        out,
        "\nall four targets met at {met} of {complete} measured sizes ({} asked)",
        sizes.len()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_table_has_30_sizes_in_order() {
        let s = parse_sizes(DEFAULT_SIZES).unwrap();
        assert_eq!(s.len(), 30);
        assert_eq!(
            s[0],
            Size {
                channels: 8,
                cells: 5,
                batch: 16
            }
        );
        assert_eq!(
            s[6],
            Size {
                channels: 10,
                cells: 5,
                batch: 16
            }
        );
        assert_eq!(
            s[29],
            Size {
                channels: 36,
                cells: 8,
                batch: 64
            }
        );
        assert_eq!(parse_sizes("8/5/32").unwrap().len(), 1);
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        assert!(
            parse_sizes("8,12/5")
                .unwrap_err()
                .contains("channels/cells/batches")
        );
        assert!(
            parse_sizes("8,x/5/32")
                .unwrap_err()
                .contains("channels \"x\"")
        );
        assert!(parse_sizes("8/0/32").unwrap_err().contains("cells \"0\""));
    }

    #[test]
    fn the_table_checks_each_target_and_counts_rows_that_meet_all() {
        let cfg = Config::default();
        let sizes = parse_sizes("8/5/16,32").unwrap();
        let good = Row {
            nasp_ms: vec![20.0, 25.0, 30.0],
            nasp_rss: vec![100.0],
            darts1_ms: vec![150.0],
            peer_nasp_ms: vec![100.0, 110.0, 120.0],
            peer_nasp_rss: vec![400.0],
            peer_darts1_ms: vec![250.0],
            failed: vec![],
        };
        let slow = Row {
            nasp_ms: vec![40.0],
            peer_darts1_ms: vec![],
            failed: vec!["peer darts1: out of memory".into()],
            ..good.clone()
        };
        assert_eq!(
            good.latest(),
            "nasp 30.0, darts1 150.0, peer nasp 120.0, peer darts1 250.0 ms/step"
        );
        assert_eq!(
            slow.latest(),
            "nasp 40.0, darts1 150.0, peer nasp 120.0, peer darts1 – ms/step"
        );
        let text = table(&cfg, &sizes, &[good, slow], 3, 5);
        assert!(
            text.contains("| nasp/peer nasp (≤ 0.3) | nasp/peer darts1 (≤ 0.12) | darts1/peer darts1 (≤ 0.8) | RSS nasp/peer (≤ 0.5) |"),
            "{text}"
        );
        // Medians: 25 / 110 = 0.227 ✓, 25 / 250 = 0.1 ✓, 150 / 250 = 0.6 ✓, 100 / 400 ✓.
        assert!(
            text.contains("| 8 | 5 | 16 | 25.0 | 150.0 | 110.0 | 250.0 | 0.227 ✓ | 0.100 ✓ | 0.600 ✓ | 0.250 ✓ |"),
            "{text}"
        );
        // 40 / 110 = 0.364 misses; the peer's DARTS is missing, so its ratios are dashes.
        assert!(text.contains("| 0.364 ✗ | – | – | 0.250 ✓ |"), "{text}");
        assert!(
            text.contains("peer darts1: out of memory did not run"),
            "{text}"
        );
        assert!(
            text.contains("met at 1 of 1 measured sizes (2 asked)"),
            "{text}"
        );
    }
}
