// Packing of GEMM weights at load. Internal to the runtime; Model::load calls it.
#pragma once

#include "graph/graph.h"

namespace coproc::runtime::detail {

// For every Gemm (without transA) and MatMul whose B is a 2-D weight: packs B once into
// Graph::packed for kernels::cpu::gemm_packed and points Node::packed at it. A Gemm's C that is a
// weight of one row ([n] or [1, n]) with beta != 0 becomes the packed GEMM's bias (beta * C),
// added in the GEMM's epilogue instead of copied into the output first. A weight whose every
// read went into a packed copy is then dropped (its shape stays; its data becomes empty), so
// the weights are held once. Packs for kernels::cpu::best_gemm_kernel() even when that is the
// portable one: on the MLP its SSE2 tiles beat OpenBLAS's SSE kernels from batch 2 up
// (OPENBLAS_CORETYPE=Nehalem, batch 32: 2130 against 2830 us) and tie at batch 1. Throws
// std::bad_alloc when out of memory.
// keep_unpacked: leave the packed weights' original bytes in place too (for the OpenCL device).
void pack_gemm_weights(Graph* graph, bool keep_unpacked);

}  // namespace coproc::runtime::detail
