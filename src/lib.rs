//! nasp-tui: NASP (and DARTS) neural architecture search on libtorch, with a terminal monitor.

pub mod app;
pub mod config;
pub mod data;
pub mod engine;
pub mod genotype;
pub mod gpu;
pub mod headless;
pub mod protocol;
pub mod rng;
pub mod rundir;
pub mod theme;
pub mod tui;
pub mod ui;
