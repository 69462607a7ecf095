// Multi-tensor optimizer kernels for nasp-tui: the weight step's gradient clipping and SGD update
// over every parameter in a handful of launches (ATen's `_foreach_*` ops), where one op per
// parameter would cost thousands of small kernel launches per step. tch exposes no `_foreach_*`
// op, so these few lines call them through ATen.
//
// Tensors cross the boundary as `at::Tensor*` (what tch's C API hands out); errors as in shim.h.

#include <ATen/TensorOperators.h>
#include <ATen/core/Tensor.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/_foreach_add.h>
#include <ATen/ops/_foreach_copy.h>
#include <ATen/ops/_foreach_mul.h>
#include <ATen/ops/_foreach_norm.h>
#include <ATen/ops/clamp_max.h>
#include <ATen/ops/linalg_vector_norm.h>
#include <ATen/ops/stack.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "shim.h"

namespace {

std::vector<at::Tensor> gather(at::Tensor *const *ts, size_t n) {
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.push_back(*ts[i]);
  return out;
}

}  // namespace

extern "C" {

void nasp_free_error(char *e) { delete[] e; }

using nasp::guarded;

// Scales `grads` in place so that their global L2 norm is at most `max_norm`; `*total` receives
// a new 0-d tensor holding the norm before scaling (release it as any tch tensor).
char *nasp_clip_grad_norm(at::Tensor *const *grads, size_t n, double max_norm,
                          at::Tensor **total) {
  return guarded([&] {
    at::NoGradGuard no_grad;
    auto g = gather(grads, n);
    auto norms = at::_foreach_norm(g, 2);
    at::Tensor norm = at::linalg_vector_norm(at::stack(norms), 2);
    at::Tensor coef = at::clamp_max(max_norm / (norm + 1e-6), 1.0);
    at::_foreach_mul_(g, coef);
    *total = new at::Tensor(norm);
  });
}

// SGD with momentum and coupled weight decay on lists of equal length:
// d = g + wd·p; buf = d (first) or μ·buf + d; p -= lr·buf, or with Nesterov p -= lr·(d + μ·buf).
char *nasp_sgd_step(at::Tensor *const *params, at::Tensor *const *grads, at::Tensor *const *bufs,
                    size_t n, double weight_decay, double momentum, double lr, bool first,
                    bool nesterov) {
  return guarded([&] {
    at::NoGradGuard no_grad;
    auto p = gather(params, n);
    auto g = gather(grads, n);
    auto b = gather(bufs, n);
    // Nothing is modified before this line: an error so far leaves every tensor as it was.
    std::vector<at::Tensor> d = weight_decay != 0.0 ? at::_foreach_add(g, p, weight_decay) : g;
    try {
      if (first) {
        at::_foreach_copy_(b, d);
      } else {
        at::_foreach_mul_(b, momentum);
        at::_foreach_add_(b, d);
      }
      if (nesterov) {
        at::_foreach_add_(p, at::_foreach_add(d, b, momentum), -lr);
      } else {
        at::_foreach_add_(p, b, -lr);
      }
    } catch (const std::exception &e) {
      // Some tensors may have changed: the caller must not apply the update again.
      throw std::runtime_error(std::string("partial update: ") + e.what());
    }
  });
}

}  // extern "C"
