//! Saving on a disk that fills up: the run says which checkpoint is the newest and how many
//! saves failed, exits with `exit::UNSAVED` when its final state is not saved, and `export`
//! gives the run's last genotype (naming its step). A normal run leaves one checkpoint per step.

mod common;

use std::path::Path;
use std::process::Command;

use common::{bin, text, tiny_search};

/// A size-limited tmpfs at `dir` (root only), unmounted on drop.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| SmallDisk(dir.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn checkpoint_names(run: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("ckpt-"))
        .collect();
    v.sort();
    v
}

#[test]
fn a_full_disk_is_reported_and_export_gives_the_newest_genotype() {
    let base = tempfile::tempdir().unwrap();
    let mnt = base.path().join("small");
    // 2 MB, of which a ballast takes 1 MB: the first checkpoint (~0.6 MB) fits, the next do not,
    // while the small files (events, genotypes) still do.
    let Some(_disk) = SmallDisk::mount(&mnt, "2m") else {
        panic!("this test mounts a tmpfs and needs root (CI and the dev machines run as root)");
    };
    std::fs::write(mnt.join("ballast"), vec![0u8; 1 << 20]).unwrap();
    let run = mnt.join("run");
    let out = tiny_search(
        &run,
        &["--max-steps", "30", "--set", "checkpoint.every_steps=10"],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(3), "{all}");
    assert!(
        all.contains(
            "newest checkpoint: step 10 (20 steps older; 2 saves failed: no space left on device)"
        ),
        "{all}"
    );
    assert_eq!(checkpoint_names(&run), ["ckpt-000000010"]);
    let status = std::fs::read_to_string(run.join("status.json")).unwrap();
    assert!(status.contains("\"saves_failed\":2"), "{status}");
    assert!(status.contains("\"newest_checkpoint\":10"), "{status}");
    let log = std::fs::read_to_string(run.join("log.txt")).unwrap();
    assert!(log.contains("newest checkpoint: step 10"), "{log}");

    let exported = Command::new(bin())
        .arg("export")
        .arg(&run)
        .output()
        .unwrap();
    assert!(exported.status.success(), "{}", text(&exported));
    let err = String::from_utf8_lossy(&exported.stderr);
    assert!(
        err.contains("genotype of step 30, from") && err.contains("final.json"),
        "{err}"
    );
    let final_txt = std::fs::read_to_string(run.join("genotypes/final.txt")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&exported.stdout).trim(),
        final_txt.trim()
    );
}

#[test]
fn a_normal_run_leaves_one_checkpoint_per_step_and_exits_0() {
    let run = tempfile::tempdir().unwrap();
    let out = tiny_search(
        run.path(),
        &["--max-steps", "20", "--set", "checkpoint.every_steps=10"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!text(&out).contains("newest checkpoint"), "{}", text(&out));
    assert_eq!(
        checkpoint_names(run.path()),
        ["ckpt-000000010", "ckpt-000000020"],
        "the end of the run does not save step 20 twice"
    );
    // The checkpoint is the newest state: export names it.
    let exported = Command::new(bin())
        .arg("export")
        .arg(run.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&exported.stderr);
    assert!(err.contains("genotype of step 20, from"), "{err}");
}
