// The libtorch (Kineto) profiler for `nasp-tui bench --profile`: where a step's device time goes,
// summed per kernel name. Same error convention as multi_tensor.cpp.

#include <torch/csrc/autograd/profiler_kineto.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "shim.h"

namespace {

namespace prof = torch::profiler::impl;

}  // namespace

extern "C" {

char *nasp_profile_begin(bool cuda) {
  try {
    std::set<prof::ActivityType> act{prof::ActivityType::CPU};
    if (cuda) act.insert(prof::ActivityType::CUDA);
    torch::autograd::profiler::prepareProfiler(prof::ProfilerConfig(prof::ProfilerState::KINETO), act);
    torch::autograd::profiler::enableProfiler(prof::ProfilerConfig(prof::ProfilerState::KINETO), act);
    return nullptr;
  } catch (const std::exception &e) {
    return nasp::copy_text(e.what());
  }
}

// Stops the profiler; `*summary` receives a table of the `top` device kernels by total time and
// the count of host-side ATen ops (release both strings with nasp_free_error). With a non-empty
// `trace`, also writes a Chrome trace there.
char *nasp_profile_end(const char *trace, int top, char **summary) {
  try {
    auto result = torch::autograd::profiler::disableProfiler();
    if (trace && *trace) result->save(trace);
    struct Agg { int64_t n = 0; uint64_t ns = 0; };
    std::map<std::string, Agg> kernels, host;
    uint64_t device_ns = 0;
    int64_t host_ops = 0, device_events = 0;
    for (const auto &ev : result->events()) {
      if (ev.deviceType() == c10::DeviceType::CUDA) {
        auto &a = kernels[ev.name()];
        a.n += 1;
        a.ns += ev.durationNs();
        device_ns += ev.durationNs();
        device_events += 1;
      } else {
        auto &a = host[ev.name()];
        a.n += 1;
        a.ns += ev.durationNs();
        host_ops += 1;
      }
    }
    // Without device kernels (a CPU run), rank the host ops instead: their times include the
    // ops they call, so the table reads as "time inside", not a partition.
    const bool on_host = device_events == 0;
    if (on_host) kernels.swap(host);
    std::vector<std::pair<std::string, Agg>> v(kernels.begin(), kernels.end());
    std::sort(v.begin(), v.end(), [](auto &a, auto &b) { return a.second.ns > b.second.ns; });
    std::string out;
    char line[512];
    std::snprintf(line, sizeof line, "profile: %lld host events, %lld device events, device time %.1f ms%s\n",
                  (long long)host_ops, (long long)device_events, device_ns / 1e6,
                  on_host ? " (host ops below, time including the ops they call)" : "");
    out += line;
    for (int i = 0; i < top && i < (int)v.size(); ++i) {
      std::string name = v[i].first.substr(0, 110);
      if (on_host) {
        std::snprintf(line, sizeof line, "  %9.2f ms %7lld  %s\n", v[i].second.ns / 1e6,
                      (long long)v[i].second.n, name.c_str());
      } else {
        std::snprintf(line, sizeof line, "  %9.2f ms %5.1f%% %7lld  %s\n", v[i].second.ns / 1e6,
                      100.0 * v[i].second.ns / device_ns, (long long)v[i].second.n, name.c_str());
      }
      out += line;
    }
    *summary = nasp::copy_text(out);
    return nullptr;
  } catch (const std::exception &e) {
    return nasp::copy_text(e.what());
  }
}

}  // extern "C"
