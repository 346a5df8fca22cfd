// Session: input validation, plan caching, memory layout and independence of sessions.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "coproc/runtime/model.h"
#include "device/cpu/cpu_session.h"
#include "reference_data.h"

namespace coproc::runtime {
namespace {

using ::testing::HasSubstr;
using testing::load_cases;
using testing::model_path;

std::shared_ptr<const Model> load(const std::string& file) {
  auto model = Model::load(model_path(file));
  EXPECT_TRUE(model.ok()) << model.error().message;
  return model.ok() ? *model : nullptr;
}

Shape shape(std::initializer_list<int64_t> dims) { return Shape::of(std::vector<int64_t>(dims)); }

// Runs mlp.onnx on the inputs of reference case mlp.b<batch>; returns the output.
std::vector<float> run_mlp(Session& session, const testing::RefCase& c) {
  const Shape s = Shape::of(c.inputs[0].dims);
  auto plan = session.prepare({&s, 1});
  EXPECT_TRUE(plan.ok());
  std::vector<float> out((*plan)->output_bytes(0) / sizeof(float));
  const void* in = c.inputs[0].data.data();
  void* o = out.data();
  EXPECT_TRUE(session.run(**plan, {&in, 1}, {&o, 1}).ok());
  return out;
}

TEST(SessionTest, shouldReturnTheSamePlanForTheSameShapes) {
  CpuSession session(load("mlp.onnx"));
  const Shape b8 = shape({8, 256});
  const Shape b3 = shape({3, 256});
  auto first = session.prepare({&b8, 1});
  auto other = session.prepare({&b3, 1});
  auto again = session.prepare({&b8, 1});
  ASSERT_TRUE(first.ok() && other.ok() && again.ok());
  EXPECT_EQ(*first, *again);
  EXPECT_NE(*first, *other);
  EXPECT_EQ((*other)->output_shape(0), shape({3, 16}));
}

TEST(SessionTest, shouldKeepAtMostMaxPlansDroppingTheLeastRecentlyUsed) {
  CpuSession session(load("mlp.onnx"), SessionLimits{.max_plans = 3});
  const Shape b1 = shape({1, 256}), b2 = shape({2, 256}), b3 = shape({3, 256}),
              b4 = shape({4, 256});
  const Plan* p1 = *session.prepare({&b1, 1});
  ASSERT_TRUE(session.prepare({&b2, 1}).ok());
  ASSERT_TRUE(session.prepare({&b3, 1}).ok());
  EXPECT_EQ(*session.prepare({&b1, 1}), p1);    // a hit: b1 is now the most recent
  ASSERT_TRUE(session.prepare({&b4, 1}).ok());  // full: drops b2, the least recently used
  EXPECT_EQ(*session.prepare({&b1, 1}), p1);
  auto rebuilt = session.prepare({&b2, 1});
  ASSERT_TRUE(rebuilt.ok());
  // Results after evictions match a session that never evicted.
  CpuSession reference(load("mlp.onnx"));
  const auto cases = load_cases("mlp");
  ASSERT_FALSE(cases.empty());
  for (const auto& c : cases) EXPECT_EQ(run_mlp(session, c), run_mlp(reference, c)) << c.id;
}

TEST(SessionTest, shouldRefuseShapesWhoseMemoryExceedsTheLimitBeforeAllocatingIt) {
  CpuSession unlimited(load("mlp.onnx"));
  const Shape small = shape({1, 256}), big = shape({4096, 256});
  const std::size_t small_peak = (*unlimited.prepare({&small, 1}))->peak_bytes();
  CpuSession session(load("mlp.onnx"), SessionLimits{.max_peak_bytes = small_peak});
  EXPECT_TRUE(session.prepare({&small, 1}).ok());
  auto plan = session.prepare({&big, 1});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.error().code, ErrorCode::kResourceExhausted);
  EXPECT_THAT(plan.error().message, HasSubstr("over the limit of " + std::to_string(small_peak)));
}

TEST(SessionTest, shouldRefuseWrongInputRankNamingTheInput) {
  CpuSession session(load("mlp.onnx"));
  const Shape s = shape({8, 256, 1});
  auto plan = session.prepare({&s, 1});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(plan.error().message, HasSubstr("input 'x'"));
  EXPECT_THAT(plan.error().message, HasSubstr("rank 3 instead of 2"));
}

TEST(SessionTest, shouldRefuseFixedDimMismatchNamingTheInput) {
  CpuSession session(load("mlp.onnx"));
  const Shape s = shape({8, 255});
  auto plan = session.prepare({&s, 1});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(plan.error().message, HasSubstr("input 'x' (expects [N, 256])"));
  EXPECT_THAT(plan.error().message, HasSubstr("dim 1 is 255 instead of 256"));
}

TEST(SessionTest, shouldRefuseOneDynamicDimTakingTwoValues) {
  // op_matmul: a3 [N,3,6], a4 [N,2,3,6], a2 [N,6], p [4,6], q [6,N].
  CpuSession session(load("op_matmul.onnx"));
  const Shape shapes[] = {shape({2, 3, 6}), shape({2, 2, 3, 6}), shape({2, 6}), shape({4, 6}),
                          shape({6, 5})};
  auto plan = session.prepare(shapes);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(plan.error().message, HasSubstr("input 'q'"));
  EXPECT_THAT(plan.error().message, HasSubstr("input 'a3' has N = 2"));
}

TEST(SessionTest, shouldRefuseShapesFromTheWireThatBreakTheLimits) {
  CpuSession session(load("mlp.onnx"));
  Shape bad_rank;
  bad_rank.rank = 100;
  const Shape huge = shape({int64_t{1} << 40, 256});
  const Shape negative = shape({-1, 256});
  for (const Shape& s : {bad_rank, huge, negative}) {
    auto plan = session.prepare({&s, 1});
    ASSERT_FALSE(plan.ok());
    EXPECT_EQ(plan.error().code, ErrorCode::kInvalidArgument);
  }
}

TEST(SessionTest, shouldRefuseTheWrongNumberOfInputs) {
  CpuSession session(load("mlp.onnx"));
  auto plan = session.prepare({});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.error().code, ErrorCode::kInvalidArgument);
}

TEST(SessionTest, shouldRefuseRunWithTheWrongNumberOfBuffers) {
  CpuSession session(load("mlp.onnx"));
  const Shape s = shape({1, 256});
  auto plan = session.prepare({&s, 1});
  ASSERT_TRUE(plan.ok());
  const Status ran = session.run(**plan, {}, {});
  ASSERT_FALSE(ran.ok());
  EXPECT_EQ(ran.error().code, ErrorCode::kInvalidArgument);
}

TEST(SessionTest, shouldWriteTheLastLayerStraightIntoTheOutputAndReuseScratchInPlace) {
  CpuSession session(load("mlp.onnx"));
  const Shape s = shape({8, 256});
  auto plan = session.prepare({&s, 1});
  ASSERT_TRUE(plan.ok());
  // Gemm, Relu, Gemm, Relu, Gemm; the Relus run in place, the last Gemm writes the output.
  EXPECT_EQ((*plan)->num_kernel_calls(), 5u);
  EXPECT_EQ((*plan)->num_output_copies(), 0u);
  // Two [8, 1024] activations are alive at once (the second Gemm reads one, writes the other).
  EXPECT_EQ((*plan)->scratch_bytes(), 2u * 8 * 1024 * sizeof(float));
}

TEST(SessionTest, shouldCopyAnInputThatIsAnOutputOnce) {
  CpuSession session(load("noop.onnx"));
  const Shape s = shape({4, 16});
  auto plan = session.prepare({&s, 1});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ((*plan)->num_kernel_calls(), 0u);
  EXPECT_EQ((*plan)->num_output_copies(), 1u);
  EXPECT_EQ((*plan)->scratch_bytes(), 0u);
  std::vector<float> in(64);
  for (std::size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(i);
  std::vector<float> out(64, -1.0f);
  const void* ip = in.data();
  void* op = out.data();
  ASSERT_TRUE(session.run(**plan, {&ip, 1}, {&op, 1}).ok());
  EXPECT_EQ(out, in);
}

TEST(SessionTest, shouldGiveIdenticalResultsFromTwoSessionsOnOneModel) {
  const auto model = load("mlp.onnx");
  const auto cases = load_cases("mlp");
  ASSERT_FALSE(cases.empty());
  CpuSession first(model);
  CpuSession second(model);
  for (const auto& c : cases) EXPECT_EQ(run_mlp(first, c), run_mlp(second, c)) << c.id;
}

TEST(SessionTest, shouldGiveIdenticalResultsFromSessionsRunningConcurrently) {
  const auto model = load("mlp.onnx");
  const auto cases = load_cases("mlp");
  ASSERT_FALSE(cases.empty());
  CpuSession reference(model);
  std::vector<std::vector<float>> want;
  for (const auto& c : cases) want.push_back(run_mlp(reference, c));
  constexpr int kThreads = 2;
  constexpr int kRounds = 20;
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      CpuSession session(model);
      for (int round = 0; round < kRounds; ++round) {
        for (std::size_t i = 0; i < cases.size(); ++i) {
          if (run_mlp(session, cases[i]) != want[i]) ++mismatches[static_cast<std::size_t>(t)];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches, std::vector<int>(kThreads, 0));
}

}  // namespace
}  // namespace coproc::runtime
