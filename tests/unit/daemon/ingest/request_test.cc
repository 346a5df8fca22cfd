// parse_request (daemon/ingest/request.h) checks a request against its model's shapes before it
// leaves ingest: rank, one batch dim, one length along the variable-length dim, every fixed dim,
// at least one row. A refusal names what was wrong, and one refused for its shapes is counted
// against the model (Rejection::counted_against), as admission counted it before.
#include "ingest/request.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "coproc/coproc_generated.h"
#include "ingest/client_session.h"
#include "models/models.h"

namespace coproc::daemon {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kArenaBytes = 64 * 1024;
constexpr uint32_t kSeq = 0;    // x [N, L, 8] float32 -> y [N, L, 8] float32
constexpr uint32_t kMixed = 1;  // cond [N, 4] bool, a [N, 4] float32, b [N, 4] int32

struct Tensor {
  fb::DType dtype;
  std::vector<int64_t> shape;  // inputs only
  uint64_t offset;
  uint64_t bytes;
};

std::vector<uint8_t> request(uint32_t model_id, const std::vector<Tensor>& inputs,
                             const std::vector<Tensor>& outputs) {
  flatbuffers::FlatBufferBuilder fbb;
  auto refs = [&](const std::vector<Tensor>& tensors) {
    std::vector<flatbuffers::Offset<fb::TensorRef>> out;
    for (const Tensor& t : tensors) {
      out.push_back(
          fb::CreateTensorRef(fbb, 0, t.dtype, fbb.CreateVector(t.shape), t.offset, t.bytes));
    }
    return fbb.CreateVector(out);
  };
  auto ins = refs(inputs);
  auto outs = refs(outputs);
  fbb.Finish(fb::CreateRequest(fbb, /*id=*/7, fb::RequestKind::Infer, model_id,
                               fb::Priority::Normal, 0, ins, outs));
  return {fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()};
}

class RequestValidation : public ::testing::Test {
 protected:
  void SetUp() override {
    auto session =
        ClientSession::create(1, ::getpid(), ::getuid(), SegmentGeometry{8, 1024, kArenaBytes},
                              /*numa_node=*/-1);
    ASSERT_TRUE(session.ok()) << session.error().message;
    client_ = std::move(session.value());
    Config config;
    for (const char* name : {"seq", "mixed"}) {
      ModelConfig m;
      m.name = name;
      m.path = std::string(COPROC_INGEST_TEST_MODELS_DIR "/") + name + ".onnx";
      config.models.push_back(std::move(m));
    }
    auto models = ModelSet::load(config);
    ASSERT_TRUE(models.ok()) << models.error().message;
    models_ = std::move(models.value());
  }

  ParseKind parse(const std::vector<uint8_t>& bytes) {
    return parse_request({reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()}, *client_,
                         models_, /*now_ticks=*/1, &parsed_, &work_);
  }

  // A seq request with input x of `shape` (float32) and room for an output as large.
  std::vector<uint8_t> seq_request(std::vector<int64_t> shape) {
    uint64_t elements = 1;
    for (int64_t d : shape) elements *= static_cast<uint64_t>(d);
    const uint64_t bytes = elements * 4;
    return request(kSeq, {{fb::DType::Float32, std::move(shape), 0, bytes}},
                   {{fb::DType::Float32, {}, 32 * 1024, bytes}});
  }

  std::shared_ptr<ClientSession> client_;
  ModelSet models_;
  Parsed parsed_;
  WorkItem work_;
};

TEST_F(RequestValidation, shouldAdmitARequestWhoseShapesMatchAndCarryItsLength) {
  ASSERT_EQ(parse(seq_request({2, 5, 8})), ParseKind::kWork) << parsed_.rejection.message;

  EXPECT_EQ(request_rows(work_), 2);
  EXPECT_EQ(work_.length, 5);
  EXPECT_EQ(work_.model, models_.get(kSeq));
}

TEST_F(RequestValidation, shouldRefuseAnInputOfTheWrongRankNamingIt) {
  ASSERT_EQ(parse(seq_request({2, 8})), ParseKind::kRejected);

  EXPECT_EQ(parsed_.rejection.code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(parsed_.rejection.message, "input 'x' has rank 2, model expects 3");
  EXPECT_EQ(parsed_.rejection.id, 7u);
  EXPECT_EQ(parsed_.rejection.counted_against, models_.get(kSeq));
}

TEST_F(RequestValidation, shouldRefuseAFixedDimOtherThanTheModels) {
  ASSERT_EQ(parse(seq_request({2, 5, 7})), ParseKind::kRejected);

  EXPECT_EQ(parsed_.rejection.message, "input 'x' of shape [2, 5, 7]: dim 2 must be 8");
  EXPECT_EQ(parsed_.rejection.counted_against, models_.get(kSeq));
}

TEST_F(RequestValidation, shouldRefuseARequestWithoutRows) {
  ASSERT_EQ(parse(seq_request({0, 5, 8})), ParseKind::kRejected);

  EXPECT_EQ(parsed_.rejection.message, "a request needs at least one row");
}

TEST_F(RequestValidation, shouldRefuseInputsThatDisagreeOnTheBatchDim) {
  const auto bytes =
      request(kMixed,
              {{fb::DType::Bool, {2, 4}, 0, 8},
               {fb::DType::Float32, {3, 4}, 1024, 48},
               {fb::DType::Int32, {2, 4}, 2048, 32}},
              {{fb::DType::Float32, {}, 4096, 1024}, {fb::DType::Bool, {}, 8192, 1024}});
  ASSERT_EQ(parse(bytes), ParseKind::kRejected);

  EXPECT_THAT(parsed_.rejection.message, HasSubstr("input 'a' has batch dim 3, input 0 has 2"));
  EXPECT_EQ(parsed_.rejection.counted_against, models_.get(kMixed));
}

TEST_F(RequestValidation, shouldNotCountARefusalBeforeTheShapeChecksAgainstTheModel) {
  const auto bytes = request(kSeq, {{fb::DType::Int32, {2, 5, 8}, 0, 320}},
                             {{fb::DType::Float32, {}, 32 * 1024, 320}});
  ASSERT_EQ(parse(bytes), ParseKind::kRejected);

  EXPECT_THAT(parsed_.rejection.message, HasSubstr("has dtype"));
  EXPECT_EQ(parsed_.rejection.counted_against, nullptr);
}

}  // namespace
}  // namespace coproc::daemon
