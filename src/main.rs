//! nasp-tui: run NASP (or DARTS) architecture search on libtorch and watch it from a terminal.
//! The subcommands live in `nasp_tui::cli`, one file each.
#![deny(unsafe_code)]

use clap::Parser;

fn main() -> std::process::ExitCode {
    nasp_tui::cli::run(nasp_tui::cli::Cli::parse())
}
