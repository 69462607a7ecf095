//! Everything that touches libtorch: supernet, optimizers, device data, the search steps, the
//! worker thread and the benchmark.

pub mod bench;
pub mod checkpoint;
pub mod device_data;
pub mod native;
pub mod ops;
pub mod optim;
pub mod resume;
pub mod search;
pub mod supernet;
pub mod worker;
