//! Everything that touches libtorch: supernet, optimizers, device data, the search steps, the
//! worker thread and the benchmark.

pub mod bench;
pub mod checkpoint;
pub mod data;
pub mod native;
pub mod ops;
pub mod optim;
pub mod search;
pub mod supernet;
pub mod worker;
