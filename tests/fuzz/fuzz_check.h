// What the fuzz targets share: the oracle check and the switch for known open bugs.
#pragma once

#include <cstdio>
#include <cstdlib>

// A property the code under test promises, checked on every input. A broken one aborts, which
// libFuzzer reports as a crash and saves the input that did it.
#define FUZZ_CHECK(cond, what)                                                                     \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed: %s\n", __FILE__, __LINE__, #cond, what); \
      std::abort();                                                                                \
    }                                                                                              \
  } while (0)

// A target skips inputs that reach a bug already reported and not yet fixed in code outside
// tests/fuzz (each guard names its reproducer under tests/fuzz/open/), so that a fuzzing run
// looks for new bugs instead of finding the same one again. COPROC_FUZZ_STRICT=1 turns every
// guard off: the replay and open/ CTest tests run that way (README.md).
inline bool fuzz_strict() {
  static const bool strict = [] {
    const char* v = std::getenv("COPROC_FUZZ_STRICT");
    return v != nullptr && v[0] == '1';
  }();
  return strict;
}
