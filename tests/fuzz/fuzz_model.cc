// fuzz_model: arbitrary bytes as an ONNX model file through runtime::Model::load, and for a model
// that loads, Session::prepare on concrete shapes and runs on zero inputs.
//
// Input: the file's bytes. Which load options (fusion, packed weights) and which value every
// dynamic dim takes (1, 2 or 3) follow from a hash of the input, so an input replays the same.
// The bytes reach Model::load through a memfd's /proc/self/fd path: the product's API is a path,
// and no file is written.
//
// Mutations: libFuzzer's byte-level mutator breaks the protobuf framing of most inputs, so three
// in four mutations parse the input as an onnx.ModelProto and change one thing a model writer
// can get wrong (a dim, an element type, an operator, an attribute, an edge, an initializer's
// shape or data, the opset), then serialise it again (LLVMFuzzerCustomMutator below).
//
// Oracle, beyond "no crash, no hang, no sanitizer report, no uncaught exception":
//   - a load either succeeds or is an Error with a message; the same for prepare and run;
//   - inputs and outputs are heap blocks of exactly their plan's sizes, so a kernel reading or
//     writing past one is an ASan report;
//   - a second prepare for the same shapes returns the cached plan, and a second run gives the
//     same output bytes (a kernel that reads scratch it never wrote shows up here, since the
//     first run leaves its scratch dirty).
// Runs whose plan needs more than kMaxRunBytes are skipped.
//
//   OPENBLAS_NUM_THREADS=1 build/fuzz/bin/fuzz_model tests/fuzz/corpus/model
#include <onnx/onnx_pb.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "coproc/kernels/cpu.h"
#include "coproc/runtime/model.h"
#include "device/cpu/cpu_session.h"
#include "fuzz_check.h"

extern "C" std::size_t LLVMFuzzerMutate(uint8_t* data, std::size_t size, std::size_t max_size);

namespace {

using coproc::runtime::CpuSession;
using coproc::runtime::DType;
using coproc::runtime::Model;
using coproc::runtime::Shape;

constexpr std::size_t kMaxRunBytes = std::size_t{64} << 20;
constexpr int64_t kMaxDynamicDim = 3;

int g_model_fd = -1;
std::string g_model_path;
bool g_verbose = false;  // COPROC_FUZZ_VERBOSE=1: say how far each input got (triage)

void note(const char* stage, const std::string& message) {
  if (g_verbose) std::fprintf(stderr, "fuzz_model: %s: %s\n", stage, message.c_str());
}

uint64_t fnv1a(const uint8_t* data, std::size_t size) {
  uint64_t h = 1469598103934665603ull;
  for (std::size_t i = 0; i < size; ++i) h = (h ^ data[i]) * 1099511628211ull;
  return h;
}

bool write_model_file(const uint8_t* data, std::size_t size) {
  if (::ftruncate(g_model_fd, 0) != 0) return false;
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pwrite(g_model_fd, data + done, size - done, static_cast<off_t>(done));
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

// Zero-filled heap blocks of exactly the requested sizes (a size of 0 still gets a block, so no
// pointer is null).
struct Buffers {
  std::vector<std::unique_ptr<std::byte[]>> blocks;
  std::vector<std::size_t> bytes;

  void* add(std::size_t n) {
    blocks.push_back(std::make_unique<std::byte[]>(n));  // value-initialised: zeros
    bytes.push_back(n);
    return blocks.back().get();
  }
};

void prepare_and_run(const std::shared_ptr<const Model>& model, int64_t dynamic_value) {
  std::vector<Shape> shapes;
  Buffers inputs;
  std::vector<const void*> input_ptrs;
  std::size_t input_bytes = 0;
  for (const auto& spec : model->inputs()) {
    const Shape shape = coproc::runtime::concrete_shape(spec, dynamic_value);
    const int64_t elements = coproc::runtime::bounded_elements(shape.view());
    if (elements < 0) return;
    const std::size_t bytes =
        static_cast<std::size_t>(elements) * coproc::runtime::dtype_bytes(spec.dtype);
    input_bytes += bytes;
    if (input_bytes > kMaxRunBytes) return;
    shapes.push_back(shape);
    input_ptrs.push_back(inputs.add(bytes));
  }
  CpuSession session(model);
  auto plan = session.prepare(shapes, input_ptrs);
  if (!plan.ok()) {
    FUZZ_CHECK(!plan.error().message.empty(), "a refused prepare says why");
    note("prepare refused", plan.error().message);
    return;
  }
  const coproc::runtime::Plan* p = plan.value();
  if (p->peak_bytes() > kMaxRunBytes) {
    note("not run", std::to_string(p->peak_bytes()) + " bytes");
    return;
  }
  FUZZ_CHECK(p->num_inputs() == shapes.size() && p->num_outputs() == model->outputs().size(),
             "the plan has the model's inputs and outputs");
  Buffers outputs;
  std::vector<void*> output_ptrs;
  for (std::size_t j = 0; j < p->num_outputs(); ++j) {
    output_ptrs.push_back(outputs.add(p->output_bytes(j)));
  }
  const coproc::Status first = session.run(*p, input_ptrs, output_ptrs);
  if (!first.ok()) {
    FUZZ_CHECK(!first.error().message.empty(), "a failed run says why");
    note("run failed", first.error().message);
    return;
  }
  note("ran", std::to_string(p->num_kernel_calls()) + " kernel calls");
  auto again = session.prepare(shapes, input_ptrs);
  FUZZ_CHECK(again.ok() && again.value() == p, "the same shapes get the cached plan");
  std::vector<std::vector<std::byte>> first_outputs;
  for (std::size_t j = 0; j < output_ptrs.size(); ++j) {
    const auto* b = static_cast<const std::byte*>(output_ptrs[j]);
    first_outputs.emplace_back(b, b + outputs.bytes[j]);
  }
  const coproc::Status second = session.run(*p, input_ptrs, output_ptrs);
  FUZZ_CHECK(second.ok(), "a run that succeeded succeeds again");
  for (std::size_t j = 0; j < output_ptrs.size(); ++j) {
    FUZZ_CHECK(outputs.bytes[j] == 0 ||
                   std::memcmp(first_outputs[j].data(), output_ptrs[j], outputs.bytes[j]) == 0,
               "a second run on the same inputs gives the same outputs");
  }
}

// ------------------------------------------------------------------ structure-aware mutation

constexpr const char* kOps[] = {"Add",
                                "Sub",
                                "Mul",
                                "Div",
                                "Pow",
                                "Equal",
                                "Where",
                                "Relu",
                                "Sigmoid",
                                "Tanh",
                                "Erf",
                                "Exp",
                                "Sqrt",
                                "Neg",
                                "Reciprocal",
                                "Gemm",
                                "MatMul",
                                "Softmax",
                                "LayerNormalization",
                                "ReduceSum",
                                "ReduceMean",
                                "ReduceMax",
                                "ReduceSumSquare",
                                "ArgMax",
                                "Reshape",
                                "Flatten",
                                "Squeeze",
                                "Unsqueeze",
                                "Identity",
                                "Transpose",
                                "Concat",
                                "Slice",
                                "Gather",
                                "Expand",
                                "Shape",
                                "Size",
                                "ConstantOfShape",
                                "Cast",
                                "Constant"};
constexpr const char* kAttributes[] = {"axis",
                                       "axes",
                                       "perm",
                                       "transA",
                                       "transB",
                                       "keepdims",
                                       "alpha",
                                       "beta",
                                       "epsilon",
                                       "to",
                                       "allowzero",
                                       "select_last_index",
                                       "noop_with_empty_axes",
                                       "stash_type"};
constexpr int64_t kInts[] = {0,
                             1,
                             2,
                             3,
                             4,
                             5,
                             7,
                             8,
                             16,
                             -1,
                             -2,
                             -3,
                             -9,
                             1 << 20,
                             (int64_t{1} << 31) - 1,
                             int64_t{1} << 31,
                             INT64_MAX,
                             INT64_MIN};
constexpr int32_t kElemTypes[] = {
    onnx::TensorProto_DataType_FLOAT,   onnx::TensorProto_DataType_INT64,
    onnx::TensorProto_DataType_INT32,   onnx::TensorProto_DataType_BOOL,
    onnx::TensorProto_DataType_FLOAT16, onnx::TensorProto_DataType_UINT8,
    onnx::TensorProto_DataType_DOUBLE,  onnx::TensorProto_DataType_UNDEFINED};

class Mutator {
 public:
  Mutator(onnx::ModelProto* model, unsigned seed) : m_(model), rng_(seed) {}

  void mutate_once() {
    onnx::GraphProto* g = m_->mutable_graph();
    switch (pick(9)) {
      case 0:
        mutate_dims(value_info(g));
        break;
      case 1:
        mutate_elem_type(g);
        break;
      case 2:
        if (g->node_size() > 0) node(g)->set_op_type(kOps[pick(std::size(kOps))]);
        break;
      case 3:
        if (g->node_size() > 0) mutate_attribute(node(g));
        break;
      case 4:
        if (g->node_size() > 0) rewire(g, node(g));
        break;
      case 5:
        if (g->initializer_size() > 0) {
          mutate_tensor(g->mutable_initializer(static_cast<int>(pick(g->initializer_size()))));
        }
        break;
      case 6:
        mutate_opset();
        break;
      case 7:
        add_or_remove_node(g);
        break;
      default:
        if (g->output_size() > 0) {
          g->mutable_output(static_cast<int>(pick(g->output_size())))->set_name(any_name(g));
        }
        break;
    }
  }

 private:
  std::size_t pick(std::size_t n) { return n == 0 ? 0 : rng_() % n; }
  int64_t any_int() { return kInts[pick(std::size(kInts))]; }
  onnx::NodeProto* node(onnx::GraphProto* g) {
    return g->mutable_node(static_cast<int>(pick(g->node_size())));
  }

  onnx::ValueInfoProto* value_info(onnx::GraphProto* g) {
    const std::size_t n = g->input_size() + g->output_size() + g->value_info_size();
    if (n == 0) return g->add_input();
    std::size_t i = pick(n);
    if (i < static_cast<std::size_t>(g->input_size())) return g->mutable_input(static_cast<int>(i));
    i -= g->input_size();
    if (i < static_cast<std::size_t>(g->output_size()))
      return g->mutable_output(static_cast<int>(i));
    return g->mutable_value_info(static_cast<int>(i - g->output_size()));
  }

  // A name some tensor of the graph has, or one nothing has.
  std::string any_name(const onnx::GraphProto* g) {
    std::vector<const std::string*> names;
    for (const auto& v : g->input()) names.push_back(&v.name());
    for (const auto& t : g->initializer()) names.push_back(&t.name());
    for (const auto& n : g->node()) {
      for (const auto& o : n.output()) names.push_back(&o);
    }
    if (names.empty() || pick(8) == 0) return pick(2) == 0 ? "" : "fuzz_missing";
    return *names[pick(names.size())];
  }

  void mutate_dims(onnx::ValueInfoProto* v) {
    auto* shape = v->mutable_type()->mutable_tensor_type()->mutable_shape();
    const std::size_t what = pick(4);
    if (what == 0 || shape->dim_size() == 0) {
      shape->add_dim()->set_dim_value(any_int() & 15);
    } else if (what == 1) {
      shape->mutable_dim()->RemoveLast();
    } else {
      auto* dim = shape->mutable_dim(static_cast<int>(pick(shape->dim_size())));
      if (what == 2) {
        dim->set_dim_value(any_int());
      } else {
        dim->set_dim_param(pick(2) == 0 ? "N" : "L");
      }
    }
  }

  void mutate_elem_type(onnx::GraphProto* g) {
    const int32_t type = kElemTypes[pick(std::size(kElemTypes))];
    if (g->initializer_size() > 0 && pick(2) == 0) {
      g->mutable_initializer(static_cast<int>(pick(g->initializer_size())))->set_data_type(type);
    } else {
      value_info(g)->mutable_type()->mutable_tensor_type()->set_elem_type(type);
    }
  }

  void mutate_attribute(onnx::NodeProto* n) {
    onnx::AttributeProto* a = nullptr;
    if (n->attribute_size() > 0 && pick(3) != 0) {
      a = n->mutable_attribute(static_cast<int>(pick(n->attribute_size())));
    } else {
      a = n->add_attribute();
      a->set_name(kAttributes[pick(std::size(kAttributes))]);
    }
    switch (pick(3)) {
      case 0:
        a->Clear();
        a->set_name(kAttributes[pick(std::size(kAttributes))]);
        a->set_type(onnx::AttributeProto_AttributeType_INT);
        a->set_i(any_int());
        break;
      case 1: {
        const std::string name = a->name();
        a->Clear();
        a->set_name(name);
        a->set_type(onnx::AttributeProto_AttributeType_INTS);
        const std::size_t count = pick(6);
        for (std::size_t k = 0; k < count; ++k)
          a->add_ints(pick(4) == 0 ? any_int() : static_cast<int64_t>(pick(5)) - 2);
        break;
      }
      default: {
        const std::string name = a->name();
        a->Clear();
        a->set_name(name);
        a->set_type(onnx::AttributeProto_AttributeType_FLOAT);
        constexpr float kFloats[] = {0.0f, 1.0f, -1.0f, 1e-5f, 1e30f, -0.0f, 0.5f};
        a->set_f(kFloats[pick(std::size(kFloats))]);
        break;
      }
    }
  }

  void rewire(onnx::GraphProto* g, onnx::NodeProto* n) {
    const std::size_t what = pick(3);
    if (what == 0 || n->input_size() == 0) {
      n->add_input(any_name(g));
    } else if (what == 1) {
      n->mutable_input()->RemoveLast();
    } else {
      n->set_input(static_cast<int>(pick(n->input_size())), any_name(g));
    }
  }

  void mutate_tensor(onnx::TensorProto* t) {
    switch (pick(4)) {
      case 0:
        if (t->dims_size() > 0) {
          t->set_dims(static_cast<int>(pick(t->dims_size())), any_int());
        } else {
          t->add_dims(any_int());
        }
        break;
      case 1:
        if (t->dims_size() > 0) {
          t->mutable_dims()->RemoveLast();
        } else {
          t->add_dims(pick(4));
        }
        break;
      case 2:
        if (t->has_raw_data()) {
          t->mutable_raw_data()->resize(pick(t->raw_data().size() + 9));
        } else {
          t->add_float_data(1.0f);
        }
        break;
      default:
        t->clear_raw_data();
        t->clear_float_data();
        t->clear_int64_data();
        t->clear_int32_data();
        break;
    }
  }

  void mutate_opset() {
    if (pick(4) == 0) {
      m_->set_ir_version(static_cast<int64_t>(3 + pick(7)));
      return;
    }
    if (m_->opset_import_size() == 0) m_->add_opset_import();
    m_->mutable_opset_import(0)->set_version(static_cast<int64_t>(1 + pick(18)));
  }

  void add_or_remove_node(onnx::GraphProto* g) {
    if (g->node_size() > 0 && pick(2) == 0) {
      g->mutable_node()->DeleteSubrange(static_cast<int>(pick(g->node_size())), 1);
      return;
    }
    onnx::NodeProto* n = g->add_node();
    n->set_op_type(kOps[pick(std::size(kOps))]);
    const std::size_t inputs = 1 + pick(3);
    for (std::size_t k = 0; k < inputs; ++k) n->add_input(any_name(g));
    n->add_output("fuzz_" + std::to_string(g->node_size()));
    if (g->output_size() > 0 && pick(2) == 0) {
      g->mutable_output(static_cast<int>(pick(g->output_size())))->set_name(n->output(0));
    }
  }

  onnx::ModelProto* m_;
  std::minstd_rand rng_;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  coproc::kernels::cpu::set_threads(1);
  g_model_fd = ::memfd_create("fuzz_model.onnx", MFD_CLOEXEC);
  FUZZ_CHECK(g_model_fd >= 0, "memfd_create");
  g_model_path = "/proc/self/fd/" + std::to_string(g_model_fd);
  const char* verbose = std::getenv("COPROC_FUZZ_VERBOSE");
  g_verbose = verbose != nullptr && *verbose == '1';
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  FUZZ_CHECK(write_model_file(data, size), "writing the memfd");
  const uint64_t h = fnv1a(data, size);
  coproc::runtime::LoadOptions options;
  options.fuse = (h & 1) == 0;
  options.pack_weights = (h & 2) == 0;
  auto model = Model::load(g_model_path, options);
  if (!model.ok()) {
    FUZZ_CHECK(!model.error().message.empty(), "a refused model says why");
    note("load refused", model.error().message);
    return 0;
  }
  prepare_and_run(model.value(), 1 + static_cast<int64_t>((h >> 2) % kMaxDynamicDim));
  return 0;
}

extern "C" std::size_t LLVMFuzzerCustomMutator(uint8_t* data, std::size_t size,
                                               std::size_t max_size, unsigned int seed) {
  onnx::ModelProto model;
  if (seed % 4 == 0 || !model.ParseFromArray(data, static_cast<int>(size))) {
    return LLVMFuzzerMutate(data, size, max_size);
  }
  Mutator mutator(&model, seed);
  const int rounds = 1 + static_cast<int>((seed >> 2) % 3);
  for (int r = 0; r < rounds; ++r) mutator.mutate_once();
  std::string out;
  if (!model.SerializeToString(&out) || out.size() > max_size) {
    return LLVMFuzzerMutate(data, size, max_size);
  }
  std::memcpy(data, out.data(), out.size());
  return out.size();
}
