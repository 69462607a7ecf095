//! The NASP architecture pass as a CUDA graph: after a few eager warm-up passes on a side
//! stream it is captured once, and later steps with the same batch shape copy their inputs into
//! the graph's and replay it, one launch instead of thousands. The replay runs on the side
//! stream beside the sparse pass on the main stream; the main stream waits for it
//! ([`Search::join_arch_pass`]) before reading its outputs. Any failure turns graphs off for the
//! run (said once in the run's log) and the pass runs eagerly.

use tch::{Device, Tensor};

use super::Search;
use crate::engine::EngineError;
use crate::engine::native::CudaGraph;
use crate::engine::ops::BnMode;
use crate::engine::supernet::ArchTrace;

/// Eager architecture passes on the graph's side stream before it is captured.
pub(super) const GRAPH_WARMUP: usize = 2;

/// A captured architecture pass: its static inputs and outputs, and the graph (dropped last).
struct CapturedPass {
    x: Tensor,
    abar: [Tensor; 2],
    trace: ArchTrace,
    graph: CudaGraph,
    /// The CUDA device it runs on.
    device: usize,
}

impl Drop for CapturedPass {
    /// A replay may still be running on the side stream (e.g. after a panic between the replay
    /// and the join): wait for the device before its tensors and the graph are freed.
    fn drop(&mut self) {
        sync_quietly(self.device);
    }
}

/// Waits for CUDA device `device`; a CUDA error (tch panics on one) is ignored: this runs while
/// tearing down, possibly during another panic's unwinding.
fn sync_quietly(device: usize) {
    let _ = std::panic::catch_unwind(|| tch::Cuda::synchronize(device as i64));
}

/// Where the CUDA graph of the architecture pass stands.
#[derive(Default)]
pub(super) struct GraphState {
    /// Turned off after a failure.
    pub(super) off: bool,
    /// Eager warm-up passes done so far, and the graph they ran on (before the capture).
    warm: usize,
    side: Option<CudaGraph>,
    captured: Option<CapturedPass>,
    /// A replay was queued on the side stream and the main stream has not waited for it yet:
    /// its outputs must not be read before [`Search::join_arch_pass`].
    unjoined: bool,
    /// Replays so far (kept when graphs are turned off, for the bench's report).
    replays: u64,
}

impl GraphState {
    /// Whether a pass has been captured (and not dropped since).
    #[cfg(test)]
    pub(super) fn is_captured(&self) -> bool {
        self.captured.is_some()
    }

    /// Replays the captured pass on its side stream, after the work queued so far on the main
    /// stream, and goes back to the main stream without waiting: the sparse pass that follows
    /// runs beside it (until `Search::join_arch_pass`).
    fn replay_captured(&mut self) -> Result<(), EngineError> {
        let Some(c) = &self.captured else {
            return Err(EngineError::Graph("replay before a capture".into()));
        };
        c.graph.enter()?;
        let replayed = c.graph.replay();
        let left = c.graph.leave();
        replayed.and(left)?;
        self.unjoined = true;
        self.replays += 1;
        Ok(())
    }
}

impl Drop for Search {
    /// A replay of the architecture pass not yet waited for (a step that panicked half-way)
    /// reads and writes the weights and batch-norm buffers: wait for it before any are freed.
    fn drop(&mut self) {
        if let (true, Device::Cuda(i)) = (self.graph.unjoined, self.device) {
            sync_quietly(i);
        }
    }
}

impl Search {
    /// How many steps replayed the captured architecture pass (`cuda_graphs`).
    pub fn graph_replays(&self) -> u64 {
        self.graph.replays
    }

    /// Whether the architecture pass is set to run as a CUDA graph: `cuda_graphs` on a GPU, in
    /// a NASP search (the only one with that pass). It may still have been turned off since.
    pub fn arch_graph_requested(&self) -> bool {
        self.cfg.cuda_graphs
            && self.device.is_cuda()
            && self.proximal()
            && !self.cfg.model.space.is_nb201()
    }

    /// The architecture pass run now; `select`: mix by the host's selection (eager) rather than
    /// by Ā as data (what a CUDA graph records).
    pub(super) fn arch_pass_eager(
        &self,
        x: &Tensor,
        abar: &[Tensor; 2],
        select: bool,
    ) -> ArchTrace {
        let sel = select.then_some(&self.selection);
        tch::autocast(self.autocast, || {
            self.net.arch_pass(x, abar, sel, BnMode::Train)
        })
    }

    /// The architecture pass at Ā on `x`: eager, or through the CUDA graph on a GPU with
    /// `cuda_graphs = true` (see the file's note). Its outputs may be read only after
    /// [`Search::join_arch_pass`].
    pub(super) fn arch_trace(&mut self, x: &Tensor, abar: &[Tensor; 2]) -> ArchTrace {
        let Device::Cuda(index) = self.device else {
            return self.arch_pass_eager(x, abar, true);
        };
        // A replay of the previous step not waited for (a step that panicked half-way): wait now,
        // before its inputs are overwritten.
        self.join_arch_pass();
        if !self.cfg.cuda_graphs || self.graph.off {
            return self.arch_pass_eager(x, abar, true);
        }
        match self.arch_trace_graph(index, x, abar) {
            Ok(Some(t)) => t,
            Ok(None) => self.arch_pass_eager(x, abar, true),
            Err(e) => {
                self.graphs_off(format!(
                    "CUDA graph of the architecture pass failed ({e}); running it eagerly"
                ));
                self.arch_pass_eager(x, abar, true)
            }
        }
    }

    /// Makes the main stream wait for a replayed architecture pass (see `arch_trace`). If that
    /// fails, waits for the whole device instead and runs later passes eagerly.
    pub(super) fn join_arch_pass(&mut self) {
        if !std::mem::take(&mut self.graph.unjoined) {
            return;
        }
        let joined = match &self.graph.captured {
            Some(c) => c.graph.join(),
            None => Err(EngineError::Graph("the captured graph is gone".into())),
        };
        if let Err(e) = joined {
            self.graphs_off(format!(
                "CUDA graph of the architecture pass: cannot wait for it ({e}); running it eagerly from now on"
            ));
        }
    }

    /// Turns CUDA graphs off for the rest of the run, saying `why` in the run's log. Waits for
    /// the device first: the side stream may still run work on what is freed here.
    fn graphs_off(&mut self, why: String) {
        self.notices.push(why);
        if let Device::Cuda(i) = self.device {
            sync_quietly(i);
        }
        self.graph = GraphState {
            off: true,
            replays: self.graph.replays,
            ..GraphState::default()
        };
    }

    /// The Ā-weighted pass (what the graph records) with a libtorch error turned into `Err`
    /// instead of a panic, so that the caller can leave the side stream and fall back.
    fn guarded_pass(&self, x: &Tensor, abar: &[Tensor; 2]) -> Result<ArchTrace, EngineError> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.arch_pass_eager(x, abar, false)
        }))
        .map_err(|p| {
            EngineError::Graph(
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "the architecture pass panicked".into()),
            )
        })
    }

    /// The graph path of `arch_trace`: replay the captured pass, or (before the capture) a
    /// warm-up pass or the capture itself. `Ok(None)`: run eagerly on the default stream.
    fn arch_trace_graph(
        &mut self,
        index: usize,
        x: &Tensor,
        abar: &[Tensor; 2],
    ) -> Result<Option<ArchTrace>, EngineError> {
        if let Some(c) = &self.graph.captured {
            if c.x.size() != x.size() {
                // E.g. an epoch's last, smaller batch.
                return Ok(None);
            }
            tch::no_grad(|| {
                c.x.shallow_clone().copy_(x);
                for (dst, src) in c.abar.iter().zip(abar) {
                    dst.shallow_clone().copy_(src);
                }
            });
            let trace = c.trace.shallow_clone();
            self.graph.replay_captured()?;
            return Ok(Some(trace));
        }
        if self.graph.side.is_none() {
            self.graph.side = Some(CudaGraph::new(index)?);
        }
        let Some(graph) = self.graph.side.take() else {
            return Ok(None);
        };
        graph.enter()?;
        if self.graph.warm < GRAPH_WARMUP {
            let t = self.guarded_pass(x, abar);
            graph.exit()?;
            self.graph.warm += 1;
            self.graph.side = Some(graph);
            return t.map(Some);
        }
        self.capture(graph, index, x, abar).map(Some)
    }

    /// Captures the architecture pass on `graph` (entered): static inputs allocated before the
    /// capture, the capture (recorded, not run), and a first replay that does this step's work.
    fn capture(
        &mut self,
        graph: CudaGraph,
        index: usize,
        x: &Tensor,
        abar: &[Tensor; 2],
    ) -> Result<ArchTrace, EngineError> {
        let xs = x.copy();
        let ab = [abar[0].detach().copy(), abar[1].detach().copy()];
        let captured = graph.capture_begin().and_then(|()| {
            let t = self.guarded_pass(&xs, &ab);
            // End the capture even when the pass failed, so the stream is usable again.
            let ended = graph.capture_end();
            let t = t?;
            ended.map(|()| t)
        });
        let exited = graph.exit();
        let trace = captured?;
        exited?;
        let out = trace.shallow_clone();
        self.graph.captured = Some(CapturedPass {
            x: xs,
            abar: ab,
            trace,
            graph,
            device: index,
        });
        self.graph.replay_captured()?;
        Ok(out)
    }
}
