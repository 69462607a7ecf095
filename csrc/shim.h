// Shared by the C++ files of nasp-tui: how errors cross into Rust. Every exported function
// returns nullptr on success or a message allocated here (released by `nasp_free_error`); no
// C++ exception crosses the boundary.
#pragma once

#include <cstring>
#include <exception>
#include <string>

namespace nasp {

inline char *copy_text(const std::string &s) {
  char *e = new char[s.size() + 1];
  std::memcpy(e, s.c_str(), s.size() + 1);
  return e;
}

template <typename F>
char *guarded(F f) {
  try {
    f();
    return nullptr;
  } catch (const std::exception &e) {
    return copy_text(e.what());
  } catch (...) {
    return copy_text("unknown C++ exception");
  }
}

}  // namespace nasp
