#include "ingest/request.h"

#include <fmt/format.h>

#include <cstring>

#include "coproc/coproc_generated.h"
#include "models/models.h"

namespace coproc::daemon {

namespace {

// Reads just the id of a Request whose full verification failed, verifying
// only the root table and that one field.
bool salvage_id(std::span<const std::byte> bytes, uint64_t* id) {
  const auto* buf = reinterpret_cast<const uint8_t*>(bytes.data());
  flatbuffers::Verifier v(buf, bytes.size());
  if (bytes.size() < sizeof(flatbuffers::uoffset_t) || !v.VerifyOffset(0)) return false;
  const auto* table = flatbuffers::GetRoot<flatbuffers::Table>(buf);
  if (!table->VerifyTableStart(v) || !table->VerifyField<uint64_t>(v, fb::Request::VT_ID, 8)) {
    return false;
  }
  *id = table->GetField<uint64_t>(fb::Request::VT_ID, 0);
  return true;
}

// Element d of a `[long]` vector. The Verifier checks only the 4-byte length
// field's alignment, so the elements of a hand-made buffer can sit at 4 mod 8:
// they are copied out, never loaded through an int64 pointer.
int64_t dim_at(const flatbuffers::Vector<int64_t>& dims, std::size_t d) {
  int64_t v = 0;
  std::memcpy(&v, dims.Data() + d * sizeof(int64_t), sizeof v);
  return flatbuffers::EndianScalar(v);
}

// Whether two arena ranges share a byte; both are known to lie inside the
// arena, so offset + bytes cannot wrap.
bool ranges_overlap(const fb::TensorRef& a, const fb::TensorRef& b) {
  return a.bytes() > 0 && b.bytes() > 0 && a.offset() < b.offset() + b.bytes() &&
         b.offset() < a.offset() + a.bytes();
}

ParseKind reject(Parsed* out, uint64_t id, ErrorCode code, std::string message) {
  out->rejection = Rejection{id, true, code, std::move(message)};
  return ParseKind::kRejected;
}

// Checks one TensorRef against the arena and the model's spec. On success
// fills shape and pointer; on failure returns a message.
std::string check_tensor(const fb::TensorRef* ref, const runtime::TensorSpec& spec, bool is_input,
                         const ClientSession& session, runtime::Shape* shape, std::byte** data) {
  const char* what = is_input ? "input" : "output";
  if (!ref) return fmt::format("{} '{}' is missing", what, spec.name);
  if (static_cast<runtime::DType>(ref->dtype()) != spec.dtype) {
    return fmt::format("{} '{}' has dtype {}, model expects {}", what, spec.name,
                       runtime::dtype_name(static_cast<runtime::DType>(ref->dtype())),
                       runtime::dtype_name(spec.dtype));
  }
  std::size_t elem = runtime::dtype_bytes(spec.dtype);
  if (ref->offset() % elem != 0) {
    return fmt::format("{} '{}' at arena offset {} is not aligned to {} bytes", what, spec.name,
                       ref->offset(), elem);
  }
  *data = session.arena_range(ref->offset(), ref->bytes());
  if (!*data) {
    return fmt::format("{} '{}' [offset {}, {} bytes] lies outside the arena", what, spec.name,
                       ref->offset(), ref->bytes());
  }
  if (!is_input) return {};
  const auto* dims = ref->shape();
  std::size_t rank = dims ? dims->size() : 0;
  if (rank > static_cast<std::size_t>(runtime::kMaxRank)) {
    return fmt::format("input '{}' has rank {} > {}", spec.name, rank, runtime::kMaxRank);
  }
  shape->rank = static_cast<int32_t>(rank);
  constexpr uint64_t kMaxElements = uint64_t{1} << 40;
  uint64_t elements = 1;
  for (std::size_t d = 0; d < rank; ++d) {
    const int64_t v = dim_at(*dims, d);
    if (v < 0 || v > (int64_t{1} << 31)) {
      return fmt::format("input '{}' dim {} = {} is out of range", spec.name, d, v);
    }
    shape->dims[d] = v;
    // Checked before the multiply: elements <= 2^40 and v <= 2^31 could wrap a uint64.
    if (v != 0 && elements > kMaxElements / static_cast<uint64_t>(v)) {
      return fmt::format("input '{}' has more than 2^40 elements", spec.name);
    }
    elements *= static_cast<uint64_t>(v);
  }
  if (elements * elem != ref->bytes()) {
    return fmt::format("input '{}' of shape {} needs {} bytes, request says {}", spec.name,
                       shape->to_string(), elements * elem, ref->bytes());
  }
  return {};
}

// The request's shapes against the model's: every input of the declared rank, one batch dim
// (dim 0) and one length (the variable-length dim) for all inputs, every fixed dim as declared,
// and at least one row. Runs for every request: a message is only built when a check fails.
// On success sets item->length.
bool check_shapes(const LoadedModel& model, WorkItem* item, std::string* problem) {
  const auto& specs = model.model->inputs();
  const int64_t rows = request_rows(*item);
  // The length is read off the model's length input (LoadedModel::length_input; the input count
  // was checked before); a wrong rank there is refused below, naming that input.
  int64_t length = 0;
  if (model.variable_length()) {
    const runtime::Shape& s = item->input_shapes[static_cast<std::size_t>(model.length_input)];
    length = s.rank > 1 ? s.dims[1] : 0;
  }
  auto refuse = [&](uint32_t i, const std::string& what) {
    *problem = "input '" + specs[i].name + "' " + what;
    return false;
  };
  for (uint32_t i = 0; i < item->n_inputs; ++i) {
    const runtime::Shape& s = item->input_shapes[i];
    const auto& dims = specs[i].dims;
    if (s.rank != static_cast<int32_t>(dims.size())) {
      return refuse(i, "has rank " + std::to_string(s.rank) + ", model expects " +
                           std::to_string(dims.size()));
    }
    for (int32_t d = 0; d < s.rank; ++d) {
      const int64_t want = dims[static_cast<std::size_t>(d)];
      if (d == 0 && s.dims[0] != rows) {
        return refuse(i, "has batch dim " + std::to_string(s.dims[0]) + ", input 0 has " +
                             std::to_string(rows));
      }
      if (d == 1 && variable_length_dim(dims) && s.dims[1] != length) {
        return refuse(i, "has length " + std::to_string(s.dims[1]) + ", another input has " +
                             std::to_string(length));
      }
      if (d > 0 && want >= 0 && s.dims[d] != want) {
        return refuse(i, "of shape " + s.to_string() + ": dim " + std::to_string(d) + " must be " +
                             std::to_string(want));
      }
    }
  }
  if (rows < 1) {
    *problem = "a request needs at least one row";
    return false;
  }
  item->length = length;
  return true;
}

}  // namespace

ParseKind parse_request(std::span<const std::byte> bytes, ClientSession& session,
                        const ModelSet& models, uint64_t now_ticks, Parsed* out, WorkItem* work) {
  const auto* buf = reinterpret_cast<const uint8_t*>(bytes.data());
  flatbuffers::Verifier verifier(buf, bytes.size());
  if (!verifier.VerifyBuffer<fb::Request>(nullptr)) {
    out->rejection = Rejection{0, false, ErrorCode::kInvalidArgument,
                               "request is not a valid flatbuffer Request"};
    out->rejection.id_known = salvage_id(bytes, &out->rejection.id);
    return ParseKind::kRejected;
  }
  const auto* req = flatbuffers::GetRoot<fb::Request>(buf);
  if (req->kind() == fb::RequestKind::Cancel) {
    out->cancel = CancelItem{req->target_id()};
    return ParseKind::kCancel;
  }
  if (req->kind() != fb::RequestKind::Infer) {
    return reject(out, req->id(), ErrorCode::kUnsupported,
                  fmt::format("request kind {} is not supported", static_cast<int>(req->kind())));
  }
  const LoadedModel* model = models.get(req->model_id());
  if (!model) {
    return reject(out, req->id(), ErrorCode::kNotFound,
                  fmt::format("no model with id {}", req->model_id()));
  }
  if (static_cast<uint8_t>(req->priority()) > static_cast<uint8_t>(fb::Priority::Low)) {
    return reject(out, req->id(), ErrorCode::kInvalidArgument,
                  fmt::format("priority {} is not a priority", static_cast<int>(req->priority())));
  }
  const auto& in_specs = model->model->inputs();
  const auto& out_specs = model->model->outputs();
  uint32_t n_in = req->inputs() ? req->inputs()->size() : 0;
  uint32_t n_out = req->outputs() ? req->outputs()->size() : 0;
  if (n_in != in_specs.size() || n_out != out_specs.size()) {
    return reject(out, req->id(), ErrorCode::kInvalidArgument,
                  fmt::format("model '{}' takes {} inputs and {} outputs, request has {} and {}",
                              model->name, in_specs.size(), out_specs.size(), n_in, n_out));
  }
  if (n_in > kMaxTensorsPerRequest || n_out > kMaxTensorsPerRequest) {
    return reject(out, req->id(), ErrorCode::kUnsupported, "too many tensors in one request");
  }

  WorkItem& item = *work;
  item.session = &session;
  item.model = model;
  item.id = req->id();
  item.priority = static_cast<uint8_t>(req->priority());
  item.deadline_ns = req->deadline_ns();
  item.received_ticks = now_ticks;
  item.n_inputs = n_in;
  item.n_outputs = n_out;
  for (uint32_t i = 0; i < n_in; ++i) {
    std::byte* data = nullptr;
    std::string problem = check_tensor(req->inputs()->Get(i), in_specs[i], true, session,
                                       &item.input_shapes[i], &data);
    if (!problem.empty())
      return reject(out, req->id(), ErrorCode::kInvalidArgument, std::move(problem));
    item.inputs[i] = data;
  }
  for (uint32_t j = 0; j < n_out; ++j) {
    std::byte* data = nullptr;
    runtime::Shape unused;
    std::string problem =
        check_tensor(req->outputs()->Get(j), out_specs[j], false, session, &unused, &data);
    if (!problem.empty())
      return reject(out, req->id(), ErrorCode::kInvalidArgument, std::move(problem));
    item.outputs[j] = data;
    item.output_bytes[j] = req->outputs()->Get(j)->bytes();
  }
  // The runtime writes outputs with memcpy and reads inputs while it writes:
  // an output may overlap neither an input nor another output. (Inputs may
  // share bytes; nothing writes them.)
  for (uint32_t j = 0; j < n_out; ++j) {
    const fb::TensorRef* o = req->outputs()->Get(j);
    for (uint32_t i = 0; i < n_in; ++i) {
      if (ranges_overlap(*o, *req->inputs()->Get(i))) {
        return reject(out, req->id(), ErrorCode::kInvalidArgument,
                      fmt::format("output '{}' overlaps input '{}' in the arena", out_specs[j].name,
                                  in_specs[i].name));
      }
    }
    for (uint32_t k = 0; k < j; ++k) {
      if (ranges_overlap(*o, *req->outputs()->Get(k))) {
        return reject(out, req->id(), ErrorCode::kInvalidArgument,
                      fmt::format("outputs '{}' and '{}' overlap in the arena", out_specs[k].name,
                                  out_specs[j].name));
      }
    }
  }
  std::string problem;
  if (!check_shapes(*model, &item, &problem)) {
    reject(out, req->id(), ErrorCode::kInvalidArgument, std::move(problem));
    out->rejection.counted_against = model;
    return ParseKind::kRejected;
  }
  return ParseKind::kWork;
}

}  // namespace coproc::daemon
