//! nasp-tui: NASP (and DARTS) neural architecture search on libtorch, with a terminal monitor.
#![deny(unsafe_code)]

pub mod app;
pub mod arch;
pub mod cli;
pub mod config;
pub mod dataset;
pub mod device;
pub mod engine;
pub mod exit;
pub mod genotype;
pub mod gpu;
pub mod headless;
pub mod nb201;
pub mod plot;
pub mod protocol;
pub mod rng;
pub mod rundir;
pub mod signals;
pub mod space;
pub mod sweep;
pub mod theme;
pub mod threads;
pub mod tui;
pub mod ui;
