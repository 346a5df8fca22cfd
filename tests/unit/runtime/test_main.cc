// OpenBLAS's default thread pool busy-waits between calls; tests run on one thread (the
// daemon's default on small machines) so that parallel ctest runs do not starve each other.
#include <gtest/gtest.h>

#include "coproc/kernels/cpu.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  coproc::kernels::cpu::set_threads(1);
  return RUN_ALL_TESTS();
}
