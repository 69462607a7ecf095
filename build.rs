//! Links libtorch so that the binary runs without `LD_LIBRARY_PATH` and keeps CUDA.
//!
//! `scripts/setup.sh` installs libtorch and tells cargo where it is (`LIBTORCH`). We add an rpath
//! to its `lib/` folder, and force `libtorch_cuda.so` into the NEEDED list: the linker's
//! `--as-needed` would otherwise drop it (nothing references it directly) and CUDA would then be
//! reported absent even on a GPU machine.
//!
//! It also compiles `csrc/` (the multi-tensor optimizer kernels, the profiler hook of `bench
//! --profile`) against the same libtorch's headers.
//!
//! And it tells the tests what this machine lacks (`test_tools`).
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn main() {
    test_tools();
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=csrc/multi_tensor.cpp");
    println!("cargo:rerun-if-changed=csrc/profile.cpp");
    println!("cargo:rerun-if-changed=csrc/cuda_graph.cpp");
    println!("cargo:rerun-if-changed=csrc/settings.cpp");
    println!("cargo:rerun-if-changed=csrc/shim.h");
    println!("cargo:rerun-if-env-changed=CUDA_HOME");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let Ok(libtorch) = std::env::var("LIBTORCH") else {
        println!("cargo:warning=LIBTORCH is not set: run scripts/setup.sh (or `make setup`) first");
        return;
    };
    let root = PathBuf::from(libtorch);
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    // CUDA's own headers (for the graph shim) come with the wheel's nvidia packages.
    let cuda_include = [
        root.join("../nvidia/cu13/include"),
        root.join("../nvidia/cuda_runtime/include"),
        PathBuf::from(std::env::var("CUDA_HOME").unwrap_or_else(|_| "/usr/local/cuda".into()))
            .join("include"),
    ]
    .into_iter()
    .find(|d| d.join("cuda_runtime_api.h").exists() && d.join("crt/host_config.h").exists());
    let has_cuda = cuda_include.is_some() && root.join("lib/libtorch_cuda.so").exists();
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .file("csrc/multi_tensor.cpp")
        .file("csrc/profile.cpp")
        .file("csrc/cuda_graph.cpp")
        .file("csrc/settings.cpp")
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .warnings(false);
    match &cuda_include {
        Some(dir) if has_cuda => {
            build.include(dir);
        }
        _ => {
            build.define("NASP_NO_CUDA_GRAPHS", None);
        }
    }
    build.compile("nasp_multi_tensor");
    let lib = root.join("lib");
    println!("cargo:rustc-link-search=native={}", lib.display());
    println!("cargo:rustc-link-lib=dylib=torch_cpu");
    println!("cargo:rustc-link-lib=dylib=c10");
    if has_cuda {
        println!("cargo:rustc-link-lib=dylib=c10_cuda");
    }
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-L{}", lib.display());
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-ltorch");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}

/// Whether `program args` runs and succeeds.
fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `cfg(no_tmux)`, `cfg(no_slurm)`, `cfg(no_second_user)` and `cfg(no_chromium)` for the tests
/// that need a real terminal (tmux), a Slurm cluster (one already up, or root to start
/// `scripts/slurm-local.sh`'s), a second user (root and `setpriv`, to act as `nobody`) or a real
/// browser (Debian's chromium, for the HTML report): without them those tests are reported as
/// ignored, with the reason. Under `CI` none is set, so a missing tool
/// fails its tests instead. Detected when the build script runs (a change of `PATH` or `CI`
/// runs it again; after installing tmux elsewhere, `touch build.rs`).
fn test_tools() {
    println!("cargo:rerun-if-env-changed=CI");
    println!("cargo:rerun-if-env-changed=PATH");
    println!("cargo:rustc-check-cfg=cfg(no_tmux)");
    println!("cargo:rustc-check-cfg=cfg(no_slurm)");
    println!("cargo:rustc-check-cfg=cfg(no_second_user)");
    println!("cargo:rustc-check-cfg=cfg(no_chromium)");
    if std::env::var_os("CI").is_some() {
        return;
    }
    if !runs("tmux", &["-V"]) {
        println!("cargo:rustc-cfg=no_tmux");
    }
    if !runs("chromium", &["--version"]) && !runs("chromium-browser", &["--version"]) {
        println!("cargo:rustc-cfg=no_chromium");
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root && !runs("scontrol", &["ping"]) {
        println!("cargo:rustc-cfg=no_slurm");
    }
    // The tests that play another user of a shared folder run as `nobody` through setpriv.
    if !root || !runs("setpriv", &["--version"]) {
        println!("cargo:rustc-cfg=no_second_user");
    }
}
