//! nasp-tui: run NASP (or DARTS) architecture search on libtorch and watch it from a terminal.
//! The subcommands live in `nasp_tui::cli`, one file each.
#![deny(unsafe_code)]

use clap::Parser;

fn main() -> std::process::ExitCode {
    // First: OpenMP threads that spin briefly while they wait (this may run the binary again,
    // see `threads`).
    nasp_tui::threads::brief_spin();
    nasp_tui::cli::run(nasp_tui::cli::Cli::parse())
}
