// Load-time passes over the lowered graph, run in this order by Model::load. Internal to the
// runtime.
#pragma once

#include "coproc/base/result.h"
#include "graph/graph.h"

namespace coproc::runtime::detail {

// Computes every node whose inputs are all weights (a Transpose of a weight, a Constant ->
// Cast -> Reshape chain, shape arithmetic on constants) into a new weight, once. An output is
// folded only when it is no bigger than its inputs together (or small), so a model cannot make
// the load allocate more than it ships. Errors: the node's own (a constant that breaks the
// operator's rules).
Status fold_constants(Graph* graph);

// Rewrites known subgraphs into fused operators of ours (ops/fused.cc): decomposed LayerNorm into
// LayerNormalization, GELU via Erf into coproc.Gelu, MatMul + bias (+ Gelu/Relu) into
// coproc.MatMulBias, and attention's MatMul -> scale -> mask -> Softmax -> MatMul into
// coproc.Attention. Only exact matches whose intermediate values nothing else reads are
// rewritten.
void fuse_patterns(Graph* graph);

// Drops nodes none of whose outputs is read (by a node or as a graph output), and the data of
// weights nothing reads any more.
void remove_dead_nodes(Graph* graph);

// Fills Graph::value_inputs: graph inputs whose values reach a value operand (OpDef::
// value_operands) through anything but a shapes-only operator.
void mark_value_inputs(Graph* graph);

}  // namespace coproc::runtime::detail
