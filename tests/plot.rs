//! `nasp-tui plot` and `nasp-tui report --format html`: every SVG renders (resvg) to a picture
//! that is not blank, the cells hold every op of the genotype as text, the same run gives the
//! same bytes, bad input gives the README's exit codes, and the HTML page opens in a real
//! headless browser (Debian's chromium) with nothing fetched from elsewhere.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{run, text, tiny_search};
use nasp_tui::arch::ArchMatrix;
use nasp_tui::genotype::Genotype;
use nasp_tui::protocol::{ArchSnapshot, Event, RunInfo};
use nasp_tui::rundir::RunDir;
use nasp_tui::rundir::events::EventWriter;

/// Renders an SVG document; returns (width, height, share of pixels that are not white).
fn render(svg: &str, what: &str) -> (u32, u32, f64) {
    let mut opt = resvg::usvg::Options::default();
    opt.fontdb_mut().load_system_fonts();
    let tree = resvg::usvg::Tree::from_str(svg, &opt)
        .unwrap_or_else(|e| panic!("{what} is not a valid SVG: {e}"));
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height()).unwrap();
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::default(),
        &mut pixmap.as_mut(),
    );
    (size.width(), size.height(), ink(&pixmap))
}

/// The share of a picture's pixels that are neither transparent nor nearly white.
fn ink(p: &resvg::tiny_skia::Pixmap) -> f64 {
    let inked = p
        .pixels()
        .iter()
        .filter(|c| c.alpha() > 0 && (c.red().min(c.green()).min(c.blue()) < 200))
        .count();
    inked as f64 / p.pixels().len().max(1) as f64
}

/// Checks that `svg` renders to a picture with at least `min_ink` of its pixels drawn.
fn assert_drawn(path: &Path, min_ink: f64) -> String {
    let svg = std::fs::read_to_string(path).unwrap();
    let (w, h, share) = render(&svg, &path.display().to_string());
    assert!(w >= 200 && h >= 100, "{}: {w}x{h}", path.display());
    assert!(
        share >= min_ink,
        "{} is nearly blank: {:.4} of its pixels drawn",
        path.display(),
        share
    );
    svg
}

fn plot(path: &Path, out: &Path) -> Output {
    run(&[
        "plot",
        path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
}

fn svgs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .collect();
    v.sort();
    v
}

/// What a page may not hold to be self-contained: anything fetched or run.
fn external_references(html: &str) -> Vec<&'static str> {
    [
        "http://", "https://", "src=", "href=", "url(", "<script", "@import", "<link",
    ]
    .into_iter()
    .filter(|s| html.contains(s))
    .collect()
}

#[test]
fn a_search_draws_its_cells_curves_and_weights_the_same_each_time() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("tiny-run");
    let o = tiny_search(&run_dir, &["--max-steps", "20"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = dir.path().join("figures");
    let o = plot(&run_dir, &out);
    assert!(o.status.success(), "{}", text(&o));
    let names: Vec<String> = svgs(&out)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "arch-normal.svg",
            "arch-reduce.svg",
            "cell-normal.svg",
            "cell-reduce.svg",
            "curves.svg"
        ],
        "{}",
        text(&o)
    );
    let (_, _, g) = nasp_tui::rundir::genotypes::newest(&run_dir).expect("a genotype");
    for (file, ops) in [
        ("cell-normal.svg", &g.normal),
        ("cell-reduce.svg", &g.reduce),
    ] {
        let svg = assert_drawn(&out.join(file), 0.01);
        for (op, _) in ops.iter() {
            assert!(
                svg.contains(&format!(">{op}</text>")),
                "{file}: {op} missing"
            );
        }
        assert!(svg.contains("tiny-run (nasp)"), "{file}: title");
    }
    for file in ["curves.svg", "arch-normal.svg", "arch-reduce.svg"] {
        let svg = assert_drawn(&out.join(file), 0.02);
        assert!(svg.contains("tiny-run (nasp)"), "{file}: title");
        assert!(
            svg.contains("step (batches)"),
            "{file}: the x axis and its unit"
        );
    }
    let curves = std::fs::read_to_string(out.join("curves.svg")).unwrap();
    assert!(curves.contains("accuracy (%)") && curves.contains("valid (per epoch)"));

    // The same run, the same bytes.
    let again = dir.path().join("again");
    assert!(plot(&run_dir, &again).status.success());
    for p in svgs(&out) {
        let name = p.file_name().unwrap();
        assert_eq!(
            std::fs::read(&p).unwrap(),
            std::fs::read(again.join(name)).unwrap(),
            "{} differs between two plots of one run",
            name.to_string_lossy()
        );
    }
    // The default place: RUN/figures.
    let o = run(&["plot", run_dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(run_dir.join("figures/cell-normal.svg").is_file());
}

/// An NB201 run by hand: its config, events (started, three snapshots over two epochs), metrics
/// and genotype.
fn nb201_run(dir: &Path, seed: u64, last_op: usize) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("config.toml"),
        format!("seed = {seed}\nalgorithm = \"nasp\"\n[model]\nspace = \"nb201\"\n"),
    )
    .unwrap();
    let mut w = EventWriter::open(dir).unwrap();
    let ops: Vec<String> = nasp_tui::nb201::OPS.iter().map(|s| s.to_string()).collect();
    w.append(
        &Event::Started(RunInfo {
            run_dir: dir.display().to_string(),
            algorithm: "nasp".into(),
            device: "cpu".into(),
            dataset: "synthetic".into(),
            epochs: 2,
            steps_per_epoch: 10,
            batch_size: 8,
            nodes: 3,
            normal_ops: ops,
            reduce_ops: Vec::new(),
            params: 1000,
            start_step: 0,
            proximal: true,
            trained: None,
            nb201: true,
        }),
        0.0,
    )
    .unwrap();
    let mut genotype = None;
    for (i, step) in [0u64, 10, 20].into_iter().enumerate() {
        let t = i as f32 / 2.0;
        let rows: Vec<Vec<f32>> = (0..6)
            .map(|e| {
                (0..5)
                    .map(|k| {
                        let win = if e == 5 { last_op } else { (e + 1) % 5 };
                        if k == win {
                            0.5 + 0.4 * t
                        } else {
                            0.5 - 0.1 * t * k as f32 / 5.0
                        }
                    })
                    .collect()
            })
            .collect();
        let m = ArchMatrix::from_rows(&rows);
        let cell = nasp_tui::arch::nb201_cell(&m);
        let g = Genotype::nb201(&cell);
        w.append(
            &Event::Arch(ArchSnapshot {
                global_step: step,
                epoch: (step / 10).min(1) as usize,
                normal: m,
                reduce: ArchMatrix::filled(0, 0, 0.0),
                normal_selected: cell.ops.iter().map(|&k| Some(k)).collect(),
                reduce_selected: Vec::new(),
                genotype: g.clone(),
                benchmark: None,
            }),
            0.0,
        )
        .unwrap();
        genotype = Some((step, g));
    }
    let mut metrics = String::new();
    for s in 1..=20u64 {
        metrics.push_str(&format!(
            "{{\"kind\":\"step\",\"epoch\":{},\"global_step\":{s},\"train_loss\":{},\"train_acc\":{},\"lr\":0.025,\"elapsed_s\":1.0}}\n",
            (s - 1) / 10,
            2.3 - 0.05 * s as f64,
            0.1 + 0.02 * s as f64
        ));
        if s % 10 == 0 {
            metrics.push_str(&format!(
                "{{\"kind\":\"epoch\",\"epoch\":{},\"global_step\":{s},\"train_loss\":1.5,\"train_acc\":0.4,\"valid_loss\":1.6,\"valid_acc\":{},\"valid_seconds\":0.5,\"lr\":0.02,\"seconds\":3.0}}\n",
                s / 10 - 1,
                0.3 + 0.01 * seed as f64
            ));
        }
    }
    std::fs::write(dir.join("metrics.jsonl"), metrics).unwrap();
    let (step, g) = genotype.unwrap();
    RunDir::open(dir)
        .unwrap()
        .write_genotype("final", &g, step)
        .unwrap();
    dir.to_path_buf()
}

#[test]
fn an_nb201_run_a_training_run_and_a_sweep_folder() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = dir.path().join("sweep");
    let runs: Vec<PathBuf> = (1..=3)
        .map(|s| {
            nb201_run(
                &sweep.join(format!("seed{s}")),
                s,
                if s == 3 { 2 } else { 3 },
            )
        })
        .collect();

    let out = dir.path().join("nb201");
    let o = plot(&runs[0], &out);
    assert!(o.status.success(), "{}", text(&o));
    let names: Vec<String> = svgs(&out)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["arch-cell.svg", "cell.svg", "curves.svg"]);
    let cell = assert_drawn(&out.join("cell.svg"), 0.01);
    let (_, _, g) = nasp_tui::rundir::genotypes::newest(&runs[0]).unwrap();
    for (op, _) in &g.normal {
        assert!(cell.contains(&format!(">{op}</text>")), "{op} missing");
    }
    let arch = assert_drawn(&out.join("arch-cell.svg"), 0.02);
    assert!(
        arch.contains("selection changes per epoch"),
        "selection panel"
    );
    assert!(arch.contains("seed1 (nasp)"), "title");

    // A sweep folder: the runs' accuracies and the consensus, then each run's figures.
    let out = dir.path().join("sweep-figures");
    let o = plot(&sweep, &out);
    assert!(o.status.success(), "{}", text(&o));
    let acc = assert_drawn(&out.join("sweep-accuracy.svg"), 0.005);
    assert!(
        acc.contains("valid accuracy (%)") && acc.contains("\nseed\n"),
        "axes"
    );
    let votes = assert_drawn(&out.join("sweep-consensus.svg"), 0.005);
    assert!(votes.contains("consensus of 3 runs"), "title");
    assert!(
        votes.contains("\n2/3\n") || votes.contains("\n3/3\n"),
        "votes"
    );
    assert!(out.join("seed2/cell.svg").is_file());

    // A training run: per epoch loss, accuracy, learning rate, drop path.
    let train = dir.path().join("train-run");
    std::fs::create_dir_all(&train).unwrap();
    std::fs::write(train.join("config.toml"), "seed = 4\n").unwrap();
    let mut m = String::new();
    for e in 0..4 {
        m.push_str(&format!(
            "{{\"kind\":\"epoch\",\"epoch\":{e},\"global_step\":{},\"train_loss\":{},\"train_acc\":{},\"test_loss\":1.9,\"test_acc\":{},\"test_images\":500,\"test_seconds\":1.0,\"lr\":{},\"drop_path\":{},\"seconds\":10.0}}\n",
            16 * (e + 1),
            2.0 - 0.2 * e as f64,
            0.2 + 0.1 * e as f64,
            0.3 + 0.05 * e as f64,
            0.05 / (1.0 + e as f64),
            0.05 * e as f64
        ));
    }
    std::fs::write(train.join("metrics.jsonl"), m).unwrap();
    RunDir::open(&train)
        .unwrap()
        .write_genotype(
            "trained",
            &Genotype::parse(nasp_tui::genotype::DARTS_V2).unwrap(),
            0,
        )
        .unwrap();
    let out = dir.path().join("train-figures");
    let o = plot(&train, &out);
    assert!(o.status.success(), "{}", text(&o));
    let t = assert_drawn(&out.join("training.svg"), 0.01);
    for s in [
        "learning rate",
        "drop-path probability",
        "\ntest\n",
        "epoch",
    ] {
        assert!(t.contains(s), "training.svg: {s} missing");
    }
    assert!(out.join("cell-reduce.svg").is_file());
    assert!(
        !out.join("arch-normal.svg").exists(),
        "a training run has no architecture weights"
    );
}

#[test]
fn bad_input_is_said_with_the_readmes_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // No such path, and a folder that is not a run and holds none: usage errors (2).
    let o = plot(&dir.path().join("nope"), &out);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no such run directory"), "{}", text(&o));
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = plot(&empty, &out);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("not a run directory"), "{}", text(&o));

    // A run that has written only its config: nothing to draw, and what is missing (1).
    let fresh = dir.path().join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    std::fs::write(fresh.join("config.toml"), "seed = 1\n").unwrap();
    let o = plot(&fresh, &out);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("nothing to draw yet")
            && t.contains("no metrics.jsonl")
            && t.contains("no genotype yet"),
        "{t}"
    );

    // A genotype but no metrics yet: the cells are drawn, the rest said (0).
    RunDir::open(&fresh)
        .unwrap()
        .write_genotype(
            "epoch-000",
            &Genotype::parse(nasp_tui::genotype::DARTS_V2).unwrap(),
            5,
        )
        .unwrap();
    std::fs::remove_file(fresh.join("metrics.jsonl")).unwrap();
    let o = plot(&fresh, &out);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not drawn: no metrics.jsonl"), "{err}");
    assert!(out.join("cell-normal.svg").is_file());

    // An --out that cannot be made (below a file): a failure to write (1).
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let o = plot(&fresh, &file.join("figures"));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("cannot write the figures"),
        "{}",
        text(&o)
    );

    // report: an unknown format is a usage error; an unwritable --out a failure.
    let o = run(&["report", fresh.to_str().unwrap(), "--format", "pdf"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = run(&[
        "report",
        fresh.to_str().unwrap(),
        "--format",
        "html",
        "--out",
        file.join("r.html").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}

/// The HTML report of a small sweep: self-contained text, then opened in headless chromium,
/// its screenshot (kept in a temporary folder) not blank and its DOM holding every figure.
#[test]
#[cfg_attr(no_chromium, ignore = "needs chromium (apt-get install chromium)")]
fn the_html_report_opens_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = dir.path().join("sweep");
    for s in 1..=2 {
        nb201_run(&sweep.join(format!("seed{s}")), s, 3);
    }
    let html = dir.path().join("report.html");
    let o = run(&[
        "report",
        sweep.to_str().unwrap(),
        "--format",
        "html",
        "--out",
        html.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(external_references(&page), Vec::<&str>::new());
    let figures = page.matches("<svg").count();
    assert!(figures >= 2 + 2 * 3, "{figures} figures inline");
    assert!(page.contains("<table>") && page.contains("Consensus genotype"));

    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok())
        .expect("chromium is not installed (apt-get install chromium); under CI this test runs");
    let browse = |args: &[&str]| {
        Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-extensions",
                "--hide-scrollbars",
            ])
            .arg(format!(
                "--user-data-dir={}",
                dir.path().join("profile").display()
            ))
            .args(args)
            .arg(format!("file://{}", html.display()))
            .output()
            .expect("run chromium")
    };
    let dom = browse(&["--dump-dom"]);
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.status.success(), "{}", text(&dom));
    assert_eq!(
        dom_text.matches("<svg").count(),
        figures,
        "the browser's DOM holds every figure"
    );
    let shot = dir.path().join("report.png");
    let o = browse(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=1200,2400",
    ]);
    assert!(shot.is_file(), "no screenshot: {}", text(&o));
    let png = resvg::tiny_skia::Pixmap::load_png(&shot).expect("a PNG screenshot");
    let share = ink(&png);
    assert!(share > 0.01, "the screenshot is nearly blank ({share:.4})");
}

/// A deterministic number in [-1, 1) from three integers (splitmix64).
fn jitter(a: u64, b: u64, c: u64) -> f64 {
    let mut z = a
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(b.wrapping_mul(0xbf58_476d_1ce4_e5b9))
        .wrapping_add(c.wrapping_mul(0x94d0_49bb_1331_11eb));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

/// A NASP run of `epochs` × 100 steps written by hand, every step logged: its config, an `Arch`
/// event per step (14 edges × 7 ops in each cell, drifting, crossing and a little noisy, so the
/// selection changes now and then) and a `step` line per step.
fn long_run(dir: &Path, epochs: usize) -> PathBuf {
    const STEPS_PER_EPOCH: usize = 100;
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("config.toml"), "seed = 1\nalgorithm = \"nasp\"\n").unwrap();
    let ops: Vec<String> = nasp_tui::space::DARTS_OPS[1..]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let lists = nasp_tui::space::OpLists {
        normal: ops.clone(),
        reduce: ops.clone(),
    };
    let mut w = EventWriter::open(dir).unwrap();
    w.append(
        &Event::Started(RunInfo {
            run_dir: dir.display().to_string(),
            algorithm: "nasp".into(),
            device: "cpu".into(),
            dataset: "synthetic".into(),
            epochs,
            steps_per_epoch: STEPS_PER_EPOCH,
            batch_size: 64,
            nodes: 4,
            normal_ops: ops.clone(),
            reduce_ops: ops.clone(),
            params: 1000,
            start_step: 0,
            proximal: true,
            trained: None,
            nb201: false,
        }),
        0.0,
    )
    .unwrap();
    let total = (epochs * STEPS_PER_EPOCH) as u64;
    let matrix = |step: u64, cell: u64| {
        let t = step as f64 / total as f64;
        let rows: Vec<Vec<f32>> = (0..14u64)
            .map(|e| {
                (0..7u64)
                    .map(|k| {
                        let phase = (e * 7 + k + cell * 3) as f64;
                        let wave = 0.25
                            * (std::f64::consts::TAU * t * (1.0 + 0.3 * k as f64) + phase).sin();
                        let grow = if k == (e + cell) % 7 { 0.4 * t } else { 0.0 };
                        let v = 0.35 + wave + grow + 0.004 * jitter(step, e * 7 + k, cell);
                        v.clamp(0.0, 1.0) as f32
                    })
                    .collect()
            })
            .collect();
        ArchMatrix::from_rows(&rows)
    };
    let mut metrics = String::new();
    let mut last = None;
    for step in 0..total {
        let (normal, reduce) = (matrix(step, 0), matrix(step, 1));
        let g = nasp_tui::arch::derive_genotype(
            &normal,
            &reduce,
            &lists,
            4,
            nasp_tui::arch::GenotypeRule::Proximal,
        );
        let epoch = step as usize / STEPS_PER_EPOCH;
        w.append(
            &Event::Arch(ArchSnapshot {
                global_step: step,
                epoch,
                normal_selected: nasp_tui::arch::proximal(&normal, 4, None).ops,
                reduce_selected: nasp_tui::arch::proximal(&reduce, 4, None).ops,
                normal,
                reduce,
                genotype: g.clone(),
                benchmark: None,
            }),
            step as f64,
        )
        .unwrap();
        let s = step as f64;
        metrics.push_str(&format!(
            "{{\"kind\":\"step\",\"epoch\":{epoch},\"global_step\":{step},\"train_loss\":{},\"train_acc\":{},\"lr\":0.025,\"elapsed_s\":{s}}}\n",
            2.3 * (-s / 2000.0).exp() + 0.3 + 0.2 * jitter(step, 1, 2),
            0.9 - 0.8 * (-s / 1500.0).exp() + 0.05 * jitter(step, 3, 4),
        ));
        if (step as usize + 1).is_multiple_of(STEPS_PER_EPOCH) {
            metrics.push_str(&format!(
                "{{\"kind\":\"epoch\",\"epoch\":{epoch},\"global_step\":{},\"train_loss\":1.0,\"train_acc\":0.6,\"valid_loss\":{},\"valid_acc\":{},\"valid_seconds\":1.0,\"lr\":0.02,\"seconds\":10.0}}\n",
                step + 1,
                1.2 * (-s / 2500.0).exp() + 0.5,
                0.85 - 0.6 * (-s / 1800.0).exp()
            ));
        }
        last = Some((step, g));
    }
    std::fs::write(dir.join("metrics.jsonl"), metrics).unwrap();
    let (step, g) = last.unwrap();
    RunDir::open(dir)
        .unwrap()
        .write_genotype("final", &g, step)
        .unwrap();
    dir.to_path_buf()
}

/// A run of 5,000 logged steps: its weight figures (14 edges × 7 ops) and its loss and
/// accuracy stay small enough for an HTML page of many runs, and still render and name
/// every op in the legend.
#[test]
fn a_long_run_draws_small_figures() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = long_run(&dir.path().join("long-run"), 50);
    let out = dir.path().join("figures");
    let o = plot(&run_dir, &out);
    assert!(o.status.success(), "{}", text(&o));
    // Before each series became one thinned path: about 760, 760 and 176 kB.
    let bounds = [
        ("arch-normal.svg", 60_000),
        ("arch-reduce.svg", 60_000),
        ("curves.svg", 30_000),
    ];
    let sizes: Vec<(&str, usize, usize)> = bounds
        .into_iter()
        .map(|(file, bound)| {
            let svg = assert_drawn(&out.join(file), 0.02);
            assert!(svg.contains("long-run (nasp)"), "{file}: title");
            (file, svg.len(), bound)
        })
        .collect();
    eprintln!("{sizes:?}");
    for (file, bytes, bound) in sizes {
        assert!(bytes < bound, "{file} is {bytes} bytes for 5,000 steps");
    }
    for file in ["arch-normal.svg", "arch-reduce.svg"] {
        let svg = std::fs::read_to_string(out.join(file)).unwrap();
        for op in &nasp_tui::space::DARTS_OPS[1..] {
            assert!(
                svg.contains(&format!("\n{op}\n")),
                "{file}: the legend lacks {op}"
            );
        }
        assert!(
            svg.contains("selection changes"),
            "{file}: the changes panel"
        );
    }
    let curves = std::fs::read_to_string(out.join("curves.svg")).unwrap();
    for s in ["train (raw faint, smoothed)", "valid (per epoch)"] {
        assert!(curves.contains(s), "curves.svg: {s} missing");
    }
}
