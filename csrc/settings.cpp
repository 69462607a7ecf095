// Global libtorch math settings tch does not expose. Same error convention as multi_tensor.cpp.

#include <ATen/Context.h>

#include "shim.h"

extern "C" {

// Whether cuDNN convolutions and cuBLAS matrix products may use TF32 (libtorch's defaults: on for
// cuDNN, off for cuBLAS). The GPU tests turn it off to compare kernels at fp32 precision.
char *nasp_set_tf32(bool allow) {
  return nasp::guarded([&] {
    at::globalContext().setAllowTF32CuDNN(allow);
    at::globalContext().setAllowTF32CuBLAS(allow);
  });
}

}  // extern "C"
