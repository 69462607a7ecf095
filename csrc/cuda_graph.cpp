// CUDA graphs for the NASP architecture pass: the pass launches thousands of small kernels with
// the same shapes every step, so it is captured once and replayed (one launch). tch has no
// binding for ATen's CUDAGraph; these few functions provide one. Same error convention as
// multi_tensor.cpp. Without CUDA headers at build time every call reports that instead.

#include <cstring>
#include <exception>
#include <string>

#include "shim.h"

using nasp::copy_text;
using nasp::guarded;

#ifdef NASP_NO_CUDA_GRAPHS

extern "C" {
char *nasp_graph_new(int, void **) { return copy_text("built without CUDA headers: no CUDA graphs"); }
char *nasp_graph_enter(void *) { return copy_text("no CUDA graphs"); }
char *nasp_graph_exit(void *) { return copy_text("no CUDA graphs"); }
char *nasp_graph_capture_begin(void *) { return copy_text("no CUDA graphs"); }
char *nasp_graph_capture_end(void *) { return copy_text("no CUDA graphs"); }
char *nasp_graph_replay(void *) { return copy_text("no CUDA graphs"); }
char *nasp_graph_leave(void *) { return copy_text("no CUDA graphs"); }
char *nasp_graph_join(void *) { return copy_text("no CUDA graphs"); }
void nasp_graph_free(void *) {}
}

#else

#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/core/Event.h>

#include <memory>
#include <optional>
#include <stdexcept>

namespace {

// One graph, the side stream it is captured (and warmed up) on, and the stream to go back to.
struct Graph {
  std::unique_ptr<at::cuda::CUDAGraph> graph;
  c10::cuda::CUDAStream side;
  std::optional<c10::cuda::CUDAStream> prev;
  bool captured = false;
  explicit Graph(int device)
      : graph(std::make_unique<at::cuda::CUDAGraph>()),
        side(c10::cuda::getStreamFromPool(false, static_cast<c10::DeviceIndex>(device))) {}
};

// `waiter` waits for the work queued so far on `on` (an event, no host synchronisation; through
// c10's device-generic event, so this file needs no CUDA runtime symbols of its own).
void stream_wait(const c10::cuda::CUDAStream &waiter, const c10::cuda::CUDAStream &on) {
  c10::Event ev(c10::DeviceType::CUDA);
  ev.record(on.unwrap());
  ev.block(waiter.unwrap());
}

}  // namespace

extern "C" {

char *nasp_graph_new(int device, void **out) {
  return guarded([&] { *out = new Graph(device); });
}

// Makes the side stream current (after the work queued so far on the current stream).
char *nasp_graph_enter(void *h) {
  return guarded([&] {
    auto *g = static_cast<Graph *>(h);
    auto cur = c10::cuda::getCurrentCUDAStream(g->side.device_index());
    stream_wait(g->side, cur);
    g->prev = cur;
    c10::cuda::setCurrentCUDAStream(g->side);
  });
}

// Goes back to the stream that was current, which then waits for the side stream's work.
char *nasp_graph_exit(void *h) {
  return guarded([&] {
    auto *g = static_cast<Graph *>(h);
    if (!g->prev) return;
    stream_wait(*g->prev, g->side);
    c10::cuda::setCurrentCUDAStream(*g->prev);
    g->prev.reset();
  });
}

// Goes back to the stream that was current without waiting for the side stream: work queued
// there from now on runs beside the side stream's (until `nasp_graph_join`).
char *nasp_graph_leave(void *h) {
  return guarded([&] {
    auto *g = static_cast<Graph *>(h);
    if (!g->prev) return;
    c10::cuda::setCurrentCUDAStream(*g->prev);
    g->prev.reset();
  });
}

// The current stream waits for the work queued so far on the side stream.
char *nasp_graph_join(void *h) {
  return guarded([&] {
    auto *g = static_cast<Graph *>(h);
    stream_wait(c10::cuda::getCurrentCUDAStream(g->side.device_index()), g->side);
  });
}

char *nasp_graph_capture_begin(void *h) {
  return guarded([&] { static_cast<Graph *>(h)->graph->capture_begin(); });
}

char *nasp_graph_capture_end(void *h) {
  return guarded([&] {
    auto *g = static_cast<Graph *>(h);
    g->graph->capture_end();
    g->captured = true;
  });
}

// Launches the captured work on the current stream.
char *nasp_graph_replay(void *h) {
  return guarded([&] {
    auto *g = static_cast<Graph *>(h);
    if (!g->captured) throw std::runtime_error("replay before a successful capture");
    g->graph->replay();
  });
}

void nasp_graph_free(void *h) {
  try {
    delete static_cast<Graph *>(h);
  } catch (...) {
  }
}

}  // extern "C"

#endif
