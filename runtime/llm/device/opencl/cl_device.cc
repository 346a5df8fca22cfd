// The OpenCL LlmDevice: kernels/opencl's Device for the context, the queue and the buffers, and
// our own program (llm.cl) for the pieces.
//
// Weights are uploaded once, when the device is made: quantized matrices in their file blocks
// (Q4_0, Q4_1, Q8_0), float ones and the norms as F32. Activations of a quantized product are
// quantized to int8 per 32-block on the device as the CPU's kernels do (quantize_q8a), and the
// product follows their arithmetic: from the same activations it gives the CPU's bits on PoCL.
// The other pieces differ from the CPU's in the order of float sums and in exp. The keys and values
// live in one device buffer in the KvCache's layout; each step uploads its rows' positions, KV
// slots, block tables and RoPE angles (the host computes the angles as the CPU device does).
//
// Each Context on OpenCL opens the device and uploads the weights itself: sharing one opened
// device and one copy of a model's weights between contexts is future work.
#include <CL/cl.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <concepts>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "coproc/kernels/opencl.h"
#include "llm/device.h"
#include "llm/device/opencl/cl_sources.h"
#include "llm/kv_cache.h"

namespace coproc::llm {

namespace {

namespace ocl = kernels::opencl;

// llm.cl's group sizes and weight type numbers.
constexpr size_t kMatmulGroup = 64;  // weight rows per work-group
constexpr int64_t kMatmulTile = 8;
constexpr size_t kRowGroup = 64;
constexpr int32_t kMaxHeadDim = 256;
constexpr int32_t kTypeF32 = 3;

enum Kernel : uint8_t {
  kEmbed,
  kRmsNorm,
  kQuantize,
  kMatmulQuant,
  kMatmulF32,
  kRope,
  kStoreKv,
  kAttention,
  kSwiglu,
  kAdd,
  kKernelCount,
};
constexpr const char* kKernelNames[kKernelCount] = {
    "embed", "rms_norm", "quantize_q8a", "matmul_quant", "matmul_f32",
    "rope",  "store_kv", "attention",    "swiglu",       "add",
};

int32_t cl_type(GgmlType t) {
  switch (t) {
    case GgmlType::kQ4_0:
      return 0;
    case GgmlType::kQ4_1:
      return 1;
    case GgmlType::kQ8_0:
      return 2;
    default:
      return kTypeF32;  // F32, or F16/BF16 converted to F32 at load
  }
}

// The argument types our kernels take by value.
template <class T>
concept ClArg = std::same_as<T, cl_mem> || std::same_as<T, int32_t> || std::same_as<T, int64_t> ||
    std::same_as<T, float>;

class ClDevice final : public LlmDevice {
 public:
  ClDevice(std::unique_ptr<ocl::Device> device, const Model& model, const KvCache& kv)
      : dev_(std::move(device)),
        model_(model),
        hp_(model.hparams()),
        n_blocks_(kv.pool().n_blocks()) {
    kv_floats_ = kv.storage_floats();
  }

  ~ClDevice() override {
    for (cl_kernel k : kernels_) {
      if (k != nullptr) clReleaseKernel(k);
    }
    if (program_ != nullptr) clReleaseProgram(program_);
  }

  // Builds the program, uploads the weights, allocates the KV storage.
  Status open() {
    if (hp_.head_dim > kMaxHeadDim || hp_.rope_dim > hp_.head_dim ||
        hp_.n_head % hp_.n_head_kv != 0) {
      return unavailable(fmt::format("head_dim {} (at most {}) or rope_dim {} is not one we run",
                                     hp_.head_dim, kMaxHeadDim, hp_.rope_dim));
    }
    if (Status st = build(); !st) return st;
    const Weights& w = model_.weights();
    upload_matrix(w.token_embd);
    upload_matrix(w.output);
    upload_vector(w.output_norm);
    for (const LayerWeights& l : w.layers) {
      for (const Matrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.gate, &l.up, &l.down})
        upload_matrix(*m);
      upload_vector(l.attn_norm);
      upload_vector(l.ffn_norm);
    }
    kv_ = alloc(static_cast<size_t>(kv_floats_) * sizeof(float), "the KV cache");
    if (Status st = finish(); !st) return unavailable(st.error().message);
    return {};
  }

  std::string name() const override { return dev_->info().name; }

  void reserve(Act a, int64_t floats) override {
    if (static_cast<size_t>(a) >= acts_.size()) acts_.resize(static_cast<size_t>(a) + 1);
    grow(acts_[static_cast<size_t>(a)], static_cast<size_t>(floats) * sizeof(float), "activations");
  }

  void begin_step(const Batch& batch, KvCache& kv) override {
    const auto rows = static_cast<size_t>(batch.size());
    rows_ = static_cast<int64_t>(rows);
    std::vector<int32_t>& tokens = host_ints_[0];
    std::vector<int32_t>& pos = host_ints_[1];
    std::vector<int32_t>& dest = host_ints_[2];
    std::vector<int32_t>& table_at = host_ints_[3];
    std::vector<int32_t>& tables = host_ints_[4];
    for (std::vector<int32_t>& v : host_ints_) v.clear();
    std::unordered_map<SeqId, int32_t> seq_table;
    for (const BatchEntry& e : batch.entries) {
      std::span<const int32_t> table = kv.block_table(e.seq);
      auto [it, fresh] = seq_table.try_emplace(e.seq, static_cast<int32_t>(tables.size()));
      if (fresh) tables.insert(tables.end(), table.begin(), table.end());
      tokens.push_back(e.token);
      pos.push_back(e.pos);
      dest.push_back(table[static_cast<size_t>(e.pos / kBlockTokens)] * kBlockTokens +
                     e.pos % kBlockTokens);
      table_at.push_back(it->second);
    }
    for (size_t i = 0; i < host_ints_.size(); ++i) {
      write(step_ints_[i], host_ints_[i].data(), host_ints_[i].size() * sizeof(int32_t));
    }
    // The RoPE angles of every row, as layers.cc's rope computes them (in double).
    rope_dim_ = hp_.rope_dim;
    rope_base_ = hp_.rope_freq_base;
    const int32_t pairs = rope_dim_ / 2;
    host_cs_.resize(rows * static_cast<size_t>(pairs) * 2);
    for (size_t r = 0; r < rows; ++r) {
      for (int32_t i = 0; i < pairs; ++i) {
        const double theta = std::pow(static_cast<double>(rope_base_), -2.0 * i / rope_dim_);
        const double angle = static_cast<double>(pos[r]) * theta;
        host_cs_[(r * pairs + i) * 2] = static_cast<float>(std::cos(angle));
        host_cs_[(r * pairs + i) * 2 + 1] = static_cast<float>(std::sin(angle));
      }
    }
    write(cs_, host_cs_.data(), host_cs_.size() * sizeof(float));
  }

  void embed(const Matrix& table, Act x) override {
    const size_t global[2] = {round_up(table.cols, 64), static_cast<size_t>(rows_)};
    const size_t local[2] = {64, 1};
    launch(kEmbed, 2, global, local, weight(table.data), cl_type(table.type),
           static_cast<int32_t>(table.cols), step_ints_[0].get(), static_cast<int32_t>(rows_),
           act(x));
  }

  void rms_norm(Act x, const float* w, int64_t rows, int64_t n, float eps, Act y) override {
    const size_t global = static_cast<size_t>(rows) * kRowGroup;
    launch(kRmsNorm, 1, &global, &kRowGroup, act(x), weight(w), static_cast<int32_t>(n), eps,
           act(y));
  }

  void matmul(const Matrix& w, Act x, int64_t rows, Act y) override {
    const size_t global[2] = {round_up(w.rows, kMatmulGroup),
                              static_cast<size_t>((rows + kMatmulTile - 1) / kMatmulTile)};
    const size_t local[2] = {kMatmulGroup, 1};
    const int32_t type = cl_type(w.type);
    if (type == kTypeF32) {
      launch(kMatmulF32, 2, global, local, weight(w.data), static_cast<int32_t>(w.rows),
             static_cast<int32_t>(w.cols), act(x), static_cast<int32_t>(rows), act(y));
      return;
    }
    const int64_t blocks = rows * (w.cols / kQuantBlock);
    grow(q_ds_, static_cast<size_t>(blocks) * 2 * sizeof(float), "quantized activations");
    grow(q_values_, static_cast<size_t>(blocks) * kQuantBlock, "quantized activations");
    const size_t qglobal = round_up(blocks, 64);
    const size_t qlocal = 64;
    launch(kQuantize, 1, &qglobal, &qlocal, act(x), static_cast<int32_t>(blocks), q_ds_.get(),
           q_values_.get());
    launch(kMatmulQuant, 2, global, local, weight(w.data), type, static_cast<int32_t>(w.rows),
           static_cast<int32_t>(w.cols / kQuantBlock), q_ds_.get(), q_values_.get(),
           static_cast<int32_t>(rows), act(y));
  }

  void rope(Act x, int32_t n_heads, int32_t head_dim, int32_t rope_dim, float freq_base) override {
    // begin_step computed the angles for the model's RoPE; an architecture that asks for
    // another is a mistake here, not a case to handle.
    COPROC_CHECK(rope_dim == rope_dim_ && freq_base == rope_base_);
    const size_t global[3] = {static_cast<size_t>(rope_dim / 2), static_cast<size_t>(n_heads),
                              static_cast<size_t>(rows_)};
    launch(kRope, 3, global, nullptr, act(x), n_heads, head_dim, rope_dim / 2, cs_.get());
  }

  void store_kv(int32_t layer, Act k, Act v) override {
    const size_t global[3] = {static_cast<size_t>(hp_.head_dim), static_cast<size_t>(hp_.n_head_kv),
                              static_cast<size_t>(rows_)};
    launch(kStoreKv, 3, global, nullptr, act(k), act(v), kv_.get(), layer, n_blocks_, hp_.n_head_kv,
           hp_.head_dim, step_ints_[2].get());
  }

  void attention(int32_t layer, Act q, Act out) override {
    const size_t global[2] = {static_cast<size_t>(hp_.n_head) * kRowGroup,
                              static_cast<size_t>(rows_)};
    const size_t local[2] = {kRowGroup, 1};
    const float scale = 1.0f / std::sqrt(static_cast<float>(hp_.head_dim));
    launch(kAttention, 2, global, local, act(q), kv_.get(), act(out), layer, n_blocks_, hp_.n_head,
           hp_.n_head_kv, hp_.head_dim, scale, step_ints_[1].get(), step_ints_[3].get(),
           step_ints_[4].get());
  }

  void swiglu(Act gate, Act up, int64_t n) override {
    const size_t global = round_up(n, 64);
    launch(kSwiglu, 1, &global, nullptr, act(gate), act(up), n);
  }

  void add(Act x, Act y, int64_t n) override {
    const size_t global = round_up(n, 64);
    launch(kAdd, 1, &global, nullptr, act(x), act(y), n);
  }

  void copy_rows(Act src, std::span<const int32_t> rows, int64_t width, Act dst) override {
    const size_t bytes = static_cast<size_t>(width) * sizeof(float);
    for (size_t i = 0; i < rows.size(); ++i) {
      check(clEnqueueCopyBuffer(dev_->queue(), act(src), act(dst),
                                static_cast<size_t>(rows[i]) * bytes, i * bytes, bytes, 0, nullptr,
                                nullptr),
            "clEnqueueCopyBuffer(copy_rows)");
    }
  }

  Status read(Act src, int64_t floats, float* host) override {
    check(
        clEnqueueReadBuffer(dev_->queue(), act(src), CL_TRUE, 0,
                            static_cast<size_t>(floats) * sizeof(float), host, 0, nullptr, nullptr),
        "clEnqueueReadBuffer(logits)");
    return finish();
  }

  Status finish() override {
    check(clFinish(dev_->queue()), "clFinish");
    if (error_.empty()) return {};
    Error e = make_error(ErrorCode::kInternal, fmt::format("OpenCL device {}: {}", name(), error_));
    error_.clear();
    return e;
  }

 private:
  static Error unavailable(std::string message) {
    return make_error(ErrorCode::kUnavailable, std::move(message));
  }

  static size_t round_up(int64_t n, size_t multiple) {
    return (static_cast<size_t>(n) + multiple - 1) / multiple * multiple;
  }

  // Records the first failure of the step (finish() reports it).
  bool check(cl_int status, const char* what) {
    if (status == CL_SUCCESS) return true;
    if (error_.empty()) error_ = fmt::format("{}: OpenCL error {}", what, status);
    return false;
  }

  Status build() {
    cl_device_id device = nullptr;
    clGetCommandQueueInfo(dev_->queue(), CL_QUEUE_DEVICE, sizeof device, &device, nullptr);
    const auto sources = cl::program_sources();
    cl_int status = CL_SUCCESS;
    program_ =
        clCreateProgramWithSource(dev_->context(), static_cast<cl_uint>(sources.size()),
                                  const_cast<const char**>(sources.data()), nullptr, &status);
    if (status != CL_SUCCESS)
      return unavailable(fmt::format("clCreateProgramWithSource: OpenCL error {}", status));
    // Division and sqrt correctly rounded where the device can, as the CPU's are (quantize_q8a's
    // d = amax / 127 then gives the CPU's bits); OpenCL otherwise allows 2.5 and 3 ulp.
    std::string options = "-cl-std=CL1.2";
    cl_device_fp_config fp = 0;
    clGetDeviceInfo(device, CL_DEVICE_SINGLE_FP_CONFIG, sizeof fp, &fp, nullptr);
    if ((fp & CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT) != 0)
      options += " -cl-fp32-correctly-rounded-divide-sqrt";
    status = clBuildProgram(program_, 1, &device, options.c_str(), nullptr, nullptr);
    if (status != CL_SUCCESS) {
      size_t size = 0;
      clGetProgramBuildInfo(program_, device, CL_PROGRAM_BUILD_LOG, 0, nullptr, &size);
      std::string log(size, '\0');
      clGetProgramBuildInfo(program_, device, CL_PROGRAM_BUILD_LOG, size, log.data(), nullptr);
      return unavailable(fmt::format("building the LLM program failed (OpenCL error {}):\n{}",
                                     status, log.c_str()));
    }
    for (int i = 0; i < kKernelCount; ++i) {
      kernels_[i] = clCreateKernel(program_, kKernelNames[i], &status);
      if (status != CL_SUCCESS)
        return unavailable(
            fmt::format("clCreateKernel({}): OpenCL error {}", kKernelNames[i], status));
      size_t most = 0;
      clGetKernelWorkGroupInfo(kernels_[i], device, CL_KERNEL_WORK_GROUP_SIZE, sizeof most, &most,
                               nullptr);
      if (most < kRowGroup) {
        return unavailable(
            fmt::format("kernel {} runs work-groups of at most {} items; it needs {}",
                        kKernelNames[i], most, kRowGroup));
      }
    }
    return {};
  }

  ocl::Buffer alloc(size_t bytes, const char* what) {
    std::string error;
    ocl::Buffer b = dev_->alloc(std::max<size_t>(bytes, 4), &error);
    if (b.get() == nullptr && error_.empty())
      error_ = fmt::format("allocating {} bytes of {}: {}", bytes, what, error);
    return b;
  }

  // Makes `b` at least `bytes` long (its contents are lost when it grows).
  void grow(ocl::Buffer& b, size_t bytes, const char* what) {
    if (b.get() != nullptr && b.bytes() >= bytes) return;
    b = alloc(bytes, what);
  }

  // A blocking write into `b` (grown to fit): the step's inputs, small, once per step.
  void write(ocl::Buffer& b, const void* data, size_t bytes) {
    grow(b, bytes, "step inputs");
    if (bytes == 0 || b.get() == nullptr) return;
    check(
        clEnqueueWriteBuffer(dev_->queue(), b.get(), CL_TRUE, 0, bytes, data, 0, nullptr, nullptr),
        "clEnqueueWriteBuffer(step inputs)");
  }

  void upload(const void* host, size_t bytes) {
    if (weights_.count(host) != 0) return;  // a tied output head is the embedding itself
    ocl::Buffer b = alloc(bytes, "weights");
    if (b.get() == nullptr) return;
    dev_->write(b.at(), host, bytes);
    weights_.emplace(host, std::move(b));
  }
  void upload_matrix(const Matrix& m) {
    upload(m.data, static_cast<size_t>(m.rows * row_bytes(m.type, m.cols)));
  }
  void upload_vector(const float* v) { upload(v, static_cast<size_t>(hp_.n_embd) * sizeof(float)); }

  cl_mem weight(const void* host) const {
    auto it = weights_.find(host);
    COPROC_CHECK(it != weights_.end());  // every weight the model has was uploaded in open()
    return it->second.get();
  }
  cl_mem act(Act a) const { return acts_[static_cast<size_t>(a)].get(); }

  template <ClArg... Args>
  void launch(Kernel k, cl_uint dims, const size_t* global, const size_t* local,
              const Args&... args) {
    if (!error_.empty()) return;  // the step failed already: finish() reports it
    const cl_kernel kernel = kernels_[k];
    cl_uint index = 0;
    cl_int status = CL_SUCCESS;
    ((status =
          status == CL_SUCCESS ? clSetKernelArg(kernel, index++, sizeof(Args), &args) : status),
     ...);
    if (!check(status, kKernelNames[k])) return;
    check(clEnqueueNDRangeKernel(dev_->queue(), kernel, dims, nullptr, global, local, 0, nullptr,
                                 nullptr),
          kKernelNames[k]);
  }

  std::unique_ptr<ocl::Device> dev_;
  const Model& model_;
  const Hparams& hp_;
  int32_t n_blocks_;
  int64_t kv_floats_ = 0;
  cl_program program_ = nullptr;
  cl_kernel kernels_[kKernelCount] = {};
  std::unordered_map<const void*, ocl::Buffer> weights_;  // by host address
  std::vector<ocl::Buffer> acts_;
  ocl::Buffer kv_, q_ds_, q_values_, cs_;
  // The step's inputs: tokens, positions, KV destinations (block * 16 + slot), where each row's
  // block table starts in `tables`, and the tables.
  std::array<std::vector<int32_t>, 5> host_ints_;
  std::array<ocl::Buffer, 5> step_ints_;
  std::vector<float> host_cs_;
  int64_t rows_ = 0;
  int32_t rope_dim_ = 0;
  float rope_base_ = 0;
  std::string error_;  // the first failure since finish()
};

}  // namespace

Result<std::unique_ptr<LlmDevice>> make_opencl_device(const DeviceChoice& choice,
                                                      const Model& model, const KvCache& kv) {
  ocl::Selector selector;
  selector.platform = choice.platform;
  selector.device = choice.device;
  std::string error;
  std::unique_ptr<ocl::Device> device = ocl::Device::open(selector, &error);
  if (device == nullptr) return make_error(ErrorCode::kUnavailable, error);
  auto cl = std::make_unique<ClDevice>(std::move(device), model, kv);
  if (Status st = cl->open(); !st) return st.error();
  return std::unique_ptr<LlmDevice>(std::move(cl));
}

}  // namespace coproc::llm
