//! Links libtorch so that the binary runs without `LD_LIBRARY_PATH` and keeps CUDA.
//!
//! `scripts/setup.sh` installs libtorch and tells cargo where it is (`LIBTORCH`). We add an rpath
//! to its `lib/` folder, and force `libtorch_cuda.so` into the NEEDED list: the linker's
//! `--as-needed` would otherwise drop it (nothing references it directly) and CUDA would then be
//! reported absent even on a GPU machine.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-changed=build.rs");
    let Ok(libtorch) = std::env::var("LIBTORCH") else {
        println!("cargo:warning=LIBTORCH is not set: run scripts/setup.sh (or `make setup`) first");
        return;
    };
    let lib = PathBuf::from(libtorch).join("lib");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-L{}", lib.display());
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-ltorch");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}
