#include "dispatch/infer_executor.h"

#include <algorithm>
#include <array>
#include <map>
#include <new>
#include <string>
#include <utility>

#include "dispatch/batch_io.h"
#include "models/models.h"
#include "platform/cycle_clock.h"

namespace coproc::daemon {

namespace {

// Runs f, which returns a Result or Status, turning std::bad_alloc into
// kResourceExhausted: a request that needs more memory than the host has left
// fails on its own, and the thread that ran it carries on.
template <class F>
auto without_bad_alloc(const char* what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kResourceExhausted, std::string("out of memory ") + what);
  }
}

// Activation memory of a batch, for the scheduler's memory cap: one row is
// planned at the padded length (inputs, outputs and the plan's scratch) and
// scaled by the rows. Called under the dispatcher's lock, from inside scheduler calls.
class MemoryEstimate {
 public:
  MemoryEstimate(const LoadedModel& model, std::vector<bool> input_dim1)
      : model_(model), input_dim1_(std::move(input_dim1)), session_(model.cpu->open_session()) {}

  uint64_t operator()(uint32_t rows, int64_t padded_length) {
    auto [it, fresh] = per_row_.try_emplace(padded_length, 0);
    if (fresh) it->second = per_row(padded_length);
    return it->second * rows;
  }

 private:
  uint64_t per_row(int64_t padded_length) {
    const auto& specs = model_.model->inputs();
    std::vector<runtime::Shape> shapes;
    for (std::size_t i = 0; i < specs.size(); ++i) {
      runtime::Shape shape = runtime::concrete_shape(specs[i], 1);  // one row
      if (input_dim1_[i]) shape.dims[1] = std::max<int64_t>(padded_length, 1);
      shapes.push_back(shape);
    }
    auto plan = session_->prepare(shapes);
    if (!plan.ok()) return kUnplannable;
    return (*plan)->peak_bytes();  // inputs, outputs and the plan's scratch
  }

  // A length the model cannot plan for counts as too big for any cap.
  static constexpr uint64_t kUnplannable = uint64_t{1} << 50;

  const LoadedModel& model_;
  std::vector<bool> input_dim1_;
  std::unique_ptr<runtime::Session> session_;  // on the CPU
  std::map<int64_t, uint64_t> per_row_;
};

// Where output j of `item` (of shape `shape`) is written: a chunk at its first row. Null when
// the request reserved too little for its whole output, with the message in *problem.
std::byte* output_place(const WorkItem& item, uint32_t j, const runtime::Shape& shape,
                        std::string* problem) {
  const auto& spec = item.model->model->outputs()[j];
  const uint64_t bytes = static_cast<uint64_t>(shape.elements()) * runtime::dtype_bytes(spec.dtype);
  uint64_t offset = 0;
  uint64_t need = bytes;
  runtime::Shape whole = shape;
  if (item.chunk.total_rows > 0) {
    // The model declares a dynamic dim 0 (chunkable), but the shape a run computes is checked:
    // an output whose dim 0 is not this chunk's rows has no place in the request's buffer.
    if (shape.rank < 1 || shape.dims[0] != request_rows(item)) {
      *problem = "output '" + spec.name + "' of shape " + shape.to_string() +
                 " does not have the chunk's " + std::to_string(request_rows(item)) +
                 " rows in dim 0, so it cannot run in chunks";
      return nullptr;
    }
    const uint64_t row_bytes = bytes / static_cast<uint64_t>(shape.dims[0]);  // dim 0: the rows
    offset = row_bytes * static_cast<uint64_t>(item.chunk.first_row);
    need = row_bytes * static_cast<uint64_t>(item.chunk.total_rows);
    whole.dims[0] = item.chunk.total_rows;
  }
  if (item.output_bytes[j] < need) {
    *problem = "output '" + spec.name + "' of shape " + whole.to_string() + " needs " +
               std::to_string(need) + " bytes, request reserved " +
               std::to_string(item.output_bytes[j]);
    return nullptr;
  }
  return static_cast<std::byte*>(item.outputs[j]) + offset;
}

}  // namespace

// What an executing thread owns: runtime Sessions (plan caches, scratch) for every model, and
// staging buffers for gathered inputs and batch outputs, shared by the models.
class InferExecutor::InferThread final : public Executor::Thread {
 public:
  std::vector<std::unique_ptr<runtime::Session>> cpu_sessions;  // by model id
  std::vector<std::unique_ptr<runtime::Session>> gpu_sessions;  // null for models on the CPU only
  std::vector<std::vector<std::byte>> inputs;
  std::vector<std::vector<std::byte>> outputs;

  // The session that runs `rows` rows of the model, on the device LoadedModel::on_gpu picks.
  runtime::Session& session(const LoadedModel& model, int64_t rows) const {
    return model.on_gpu(rows) ? *gpu_sessions[model.id] : *cpu_sessions[model.id];
  }
};

InferExecutor::InferExecutor(const ModelSet& models, uint64_t request_memory_bytes)
    : models_(models), request_memory_bytes_(request_memory_bytes) {
  for (const auto& m : models.all()) {
    COPROC_CHECK(m.id == layouts_.size());
    Layout layout;
    bool other_dynamic = false;
    // Chunks cut every input and output at dim 0, so each must have a dynamic dim 0 (the
    // batch): an output whose dim 0 is fixed, or follows another input dim, has no row offset
    // in the client's buffer.
    bool batch_dim0 = true;
    for (const auto& spec : m.model->inputs()) {
      for (std::size_t d = 2; d < spec.dims.size(); ++d) other_dynamic |= spec.dims[d] < 0;
      batch_dim0 &= !spec.dims.empty() && spec.dims[0] < 0;
      layout.input_dim1.push_back(variable_length_dim(spec.dims));
    }
    for (const auto& spec : m.model->outputs()) {
      batch_dim0 &= !spec.dims.empty() && spec.dims[0] < 0;
      layout.output_dim1.push_back(variable_length_dim(spec.dims));
    }
    // A dynamic dim beyond dim 1 cannot be stacked across requests of different shapes.
    layout.traits.one_per_batch = other_dynamic;
    layout.traits.chunkable = batch_dim0 && !other_dynamic;
    layout.traits.variable_length = m.variable_length();
    layouts_.push_back(std::move(layout));
  }
}

InferExecutor::~InferExecutor() = default;

BatchTraits InferExecutor::traits(const LoadedModel& model) const {
  return layouts_[model.id].traits;
}

sched::MemoryEstimator InferExecutor::memory_estimator(const LoadedModel& model) const {
  return [e = std::make_shared<MemoryEstimate>(model, layouts_[model.id].input_dim1)](
             uint32_t rows, int64_t len) { return (*e)(rows, len); };
}

std::unique_ptr<Executor::Thread> InferExecutor::make_thread() const {
  auto thread = std::make_unique<InferThread>();
  const runtime::SessionLimits limits{kMaxPlansPerSession, request_memory_bytes_};
  for (const auto& m : models_.all()) {
    thread->cpu_sessions.push_back(m.cpu->open_session(limits));
    thread->gpu_sessions.push_back(m.gpu != nullptr ? m.gpu->open_session(limits) : nullptr);
  }
  return thread;
}

RunEnd InferExecutor::run_one(WorkItem& item, Thread& thread, Answers& answers) const {
  auto& state = static_cast<InferThread&>(thread);  // made by make_thread() for this thread
  const int64_t rows = request_rows(item);
  runtime::Session& session = state.session(*item.model, rows);
  auto plan = without_bad_alloc("planning a request", [&] {
    return session.prepare({item.input_shapes.data(), item.n_inputs});
  });
  if (!plan.ok()) return RunEnd::failed(plan.error());
  std::array<runtime::Shape, kMaxTensorsPerRequest> out_shapes;
  std::array<void*, kMaxTensorsPerRequest> outs;
  for (uint32_t j = 0; j < item.n_outputs; ++j) {
    out_shapes[j] = (*plan)->output_shape(j);
    std::string problem;
    outs[j] = output_place(item, j, out_shapes[j], &problem);
    if (outs[j] == nullptr) return RunEnd::failed(make_error(ErrorCode::kInvalidArgument, problem));
  }
  const uint64_t start = CycleClock::now();
  // One request (or one chunk of it), no padding: the model reads and writes the client's arena.
  Status run =
      session.run(**plan, {item.inputs.data(), item.n_inputs}, {outs.data(), item.n_outputs});
  const uint64_t end = CycleClock::now();
  if (!run.ok()) return RunEnd::failed(run.error());
  const uint64_t exec_ns = CycleClock::to_ns(end - start);
  answers.ok(item, {out_shapes.data(), item.n_outputs},
             {start, exec_ns, static_cast<uint32_t>(rows)},
             /*wake=*/true);
  return {.exec_ns = exec_ns, .on_gpu = item.model->on_gpu(rows)};
}

RunEnd InferExecutor::run_batch(const BatchRun& batch, Thread& thread, Answers& answers) const {
  auto& state = static_cast<InferThread&>(thread);  // made by make_thread() for this thread
  std::span<WorkItem* const> items = batch.items;
  const LoadedModel& model = *items[0]->model;
  const Layout& layout = layouts_[model.id];
  const auto& in_specs = model.model->inputs();
  const auto& out_specs = model.model->outputs();
  const int64_t rows = batch.rows;
  const int64_t padded = batch.padded_length;
  std::array<runtime::Shape, kMaxTensorsPerRequest> shapes;
  std::array<const void*, kMaxTensorsPerRequest> ins;
  std::array<void*, kMaxTensorsPerRequest> outs;
  // Staging and planning allocate: a batch too big for the memory left fails, the daemon lives.
  // A batch for the OpenCL device is gathered into its session's pinned staging, and its outputs
  // come back there, so the transfers are DMA from and to pinned memory.
  const bool on_gpu = model.on_gpu(rows);
  runtime::Session& session = state.session(model, rows);
  auto plan = without_bad_alloc("staging a batch", [&]() -> Result<const runtime::Plan*> {
    for (uint32_t i = 0; i < in_specs.size(); ++i) {
      shapes[i] = batched_shape(items[0]->input_shapes[i], rows, layout.input_dim1[i], padded);
    }
    auto prepared = session.prepare({shapes.data(), in_specs.size()});
    if (!prepared.ok()) return prepared;
    state.inputs.resize(std::max(state.inputs.size(), in_specs.size()));
    state.outputs.resize(std::max(state.outputs.size(), out_specs.size()));
    for (uint32_t i = 0; i < in_specs.size(); ++i) {
      const std::size_t elem = runtime::dtype_bytes(in_specs[i].dtype);
      const auto bytes = static_cast<std::size_t>(shapes[i].elements()) * elem;
      void* staging = session.input_staging(i);  // pinned on the OpenCL device, else null
      if (staging == nullptr) {
        state.inputs[i].resize(bytes);
        staging = state.inputs[i].data();
      }
      gather_input(items, i, layout.input_dim1[i], padded, elem, static_cast<std::byte*>(staging));
      ins[i] = staging;
    }
    for (uint32_t j = 0; j < out_specs.size(); ++j) {
      outs[j] = session.output_staging(j);
      if (outs[j] == nullptr) {
        state.outputs[j].resize((*prepared)->output_bytes(j));
        outs[j] = state.outputs[j].data();
      }
    }
    return prepared;
  });
  if (!plan.ok()) {
    // Together over the memory limit: each alone may fit, and one that does not fails alone.
    if (items.size() > 1 && plan.error().code == ErrorCode::kResourceExhausted) {
      return {.kind = RunEnd::Kind::kRunEachAlone};
    }
    return RunEnd::failed(plan.error());
  }
  const uint64_t start = CycleClock::now();
  // Rows of a batch are independent (the contract of batching): the device may split them to
  // overlap its transfers with its work.
  Status run =
      session.run_rows(**plan, {ins.data(), in_specs.size()}, {outs.data(), out_specs.size()});
  const uint64_t end = CycleClock::now();
  if (!run.ok()) {
    // The model refused some request's data (a token id out of range): run each alone, so only
    // the request that carries it fails and its batch mates are answered as if it were absent.
    if (items.size() > 1 && run.error().code == ErrorCode::kInvalidArgument) {
      return {.kind = RunEnd::Kind::kRunEachAlone};
    }
    return RunEnd::failed(run.error());
  }
  const uint64_t exec_ns = CycleClock::to_ns(end - start);
  const RunTiming timing{start, exec_ns, static_cast<uint32_t>(rows)};
  int64_t row_offset = 0;
  std::array<runtime::Shape, kMaxTensorsPerRequest> item_shapes;
  std::array<std::byte*, kMaxTensorsPerRequest> places;
  for (WorkItem* w : items) {
    const int64_t r = request_rows(*w);
    std::string problem;
    for (uint32_t j = 0; j < out_specs.size() && problem.empty(); ++j) {
      item_shapes[j] =
          item_output_shape((*plan)->output_shape(j), r, layout.output_dim1[j], w->length);
      places[j] = output_place(*w, j, item_shapes[j], &problem);
    }
    if (!problem.empty()) {
      answers.fail(*w, ErrorCode::kInvalidArgument, problem);
      row_offset += r;
      continue;
    }
    for (uint32_t j = 0; j < out_specs.size(); ++j) {
      scatter_output(static_cast<const std::byte*>(outs[j]), (*plan)->output_shape(j), row_offset,
                     r, layout.output_dim1[j], w->length, runtime::dtype_bytes(out_specs[j].dtype),
                     places[j]);
    }
    answers.ok(*w, {item_shapes.data(), out_specs.size()}, timing, /*wake=*/false);
    row_offset += r;
  }
  return {.exec_ns = exec_ns, .on_gpu = on_gpu};
}

}  // namespace coproc::daemon
