//! The engine's one error type. Every fallible call under `engine` returns [`EngineError`]; the
//! worker turns the one that ends a run into `Event::Failed` with its text, so each variant's
//! text is what the user reads (the wrapped errors' own messages, unchanged).

use crate::dataset::DataError;
use crate::engine::checkpoint::CheckpointError;
use crate::rundir::RunDirError;

/// What can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A checkpoint could not be found, read, used or written.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The training images could not be loaded.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The run directory could not be made or written.
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    /// Another live process owns the run directory.
    #[error("{0}")]
    RunInUse(String),
    /// The `device` setting names no usable device.
    #[error("{0}")]
    Device(String),
    /// The model names an op the op table does not have.
    #[error("unknown op {0:?}")]
    UnknownOp(String),
    /// A genotype that cannot be built into a network to train (`nasp-tui train`); the text
    /// names the cell, the position and the op.
    #[error("genotype: {0}")]
    Genotype(String),
    /// The ops of several edges could not be fused into one (see `ops::Op::fuse`).
    #[error("{0}")]
    Fuse(String),
    /// A libtorch entry point of `csrc/` (multi-tensor kernels, profiler, CUDA graphs) failed;
    /// the text is libtorch's.
    #[error("{0}")]
    Native(String),
    /// The CUDA graph of the architecture pass was used out of order, or its pass panicked.
    #[error("{0}")]
    Graph(String),
}
