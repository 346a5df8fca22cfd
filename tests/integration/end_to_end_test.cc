// A real daemon and real clients: results, metadata and errors end to end.
#include <gtest/gtest.h>

#include <cmath>

#include "support/daemon_process.h"
#include "support/test_client.h"

namespace coproc::test {
namespace {

class EndToEnd : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(daemon_.started()) << daemon_.log(); }
  DaemonProcess daemon_{standard_models()};
};

TEST_F(EndToEnd, shouldPublishModelMetadataInTheRegistry) {
  ClientHandle client(daemon_.socket_path());
  ASSERT_EQ(client.status, COPROC_OK) << coproc_last_error();
  ASSERT_EQ(coproc_model_count(client.c), 2u);
  coproc_model* mlp = client.model("mlp");
  ASSERT_NE(mlp, nullptr);
  EXPECT_STREQ(coproc_model_name(mlp), "mlp");
  ASSERT_EQ(coproc_model_input_count(mlp), 1u);
  ASSERT_EQ(coproc_model_output_count(mlp), 1u);
  coproc_tensor_info in, out;
  ASSERT_EQ(coproc_model_input(mlp, 0, &in), COPROC_OK);
  ASSERT_EQ(coproc_model_output(mlp, 0, &out), COPROC_OK);
  EXPECT_STREQ(in.name, "x");
  EXPECT_EQ(in.dtype, COPROC_DTYPE_FLOAT32);
  ASSERT_EQ(in.rank, 2);
  EXPECT_EQ(in.shape[0], -1);
  EXPECT_EQ(in.shape[1], 256);
  EXPECT_STREQ(out.name, "y");
  EXPECT_EQ(out.shape[1], 16);
  coproc_model* none = nullptr;
  EXPECT_EQ(coproc_model_find(client.c, "nope", &none), COPROC_ERR_NOT_FOUND);
  EXPECT_NE(std::string(coproc_last_error()).find("nope"), std::string::npos);
}

TEST_F(EndToEnd, shouldMatchOnnxRuntimeForMlpAtEveryReferenceBatch) {
  ClientHandle client(daemon_.socket_path());
  ASSERT_EQ(client.status, COPROC_OK) << coproc_last_error();
  coproc_model* mlp = client.model("mlp");
  for (int batch : {1, 3, 8, 32}) {
    std::string stem = models_dir() + "/ref/mlp.b" + std::to_string(batch);
    std::vector<float> x = read_f32(stem + ".in0.f32");
    std::vector<float> expected = read_f32(stem + ".out0.f32");
    ASSERT_EQ(x.size(), static_cast<std::size_t>(batch) * 256) << stem;
    ASSERT_EQ(expected.size(), static_cast<std::size_t>(batch) * 16) << stem;
    coproc_tensor in = arena_tensor(client.c, {batch, 256}, x.data());
    coproc_tensor out = arena_tensor(client.c, {batch, 16});
    ASSERT_EQ(coproc_infer(client.c, mlp, &in, 1, &out, 1, 5'000'000'000), COPROC_OK)
        << coproc_last_error();
    ASSERT_EQ(out.rank, 2);
    EXPECT_EQ(out.shape[0], batch);
    EXPECT_EQ(out.shape[1], 16);
    // Relative to the output's scale: |ours - ort| <= 1e-5 * max|ort|. An
    // element-wise relative bound is meaningless for float32 outputs near
    // zero: ONNX Runtime itself is 1.4e-4 element-wise off a float64
    // evaluation of this MLP on such elements, but within 7e-7 of its scale.
    double worst = 0, scale = 0;
    for (float e : expected) scale = std::max(scale, static_cast<double>(std::abs(e)));
    for (std::size_t i = 0; i < expected.size(); ++i) {
      worst = std::max(worst, std::abs(static_cast<double>(floats(out)[i]) - expected[i]) / scale);
    }
    EXPECT_LE(worst, 1e-5) << "batch " << batch;
    coproc_free(client.c, in.data);
    coproc_free(client.c, out.data);
  }
}

TEST_F(EndToEnd, shouldReturnIdentityOfInputForNoop) {
  ClientHandle client(daemon_.socket_path());
  coproc_model* noop = client.model("noop");
  std::vector<float> x(4 * 16);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) * 0.5f - 3.f;
  coproc_tensor in = arena_tensor(client.c, {4, 16}, x.data());
  coproc_tensor out = arena_tensor(client.c, {4, 16});
  coproc_request* r = nullptr;
  ASSERT_EQ(coproc_submit(client.c, noop, &in, 1, &out, 1, nullptr, &r), COPROC_OK);
  ASSERT_EQ(coproc_wait(r, 5'000'000'000), COPROC_OK) << coproc_last_error();
  EXPECT_EQ(std::memcmp(out.data, x.data(), x.size() * sizeof(float)), 0);
  coproc_timing timing;
  ASSERT_EQ(coproc_request_timing(r, &timing), COPROC_OK);
  EXPECT_EQ(timing.batch_size, 4u);
  EXPECT_EQ(timing.device, COPROC_DEVICE_CPU);
  EXPECT_EQ(coproc_release(r), COPROC_OK);
}

TEST_F(EndToEnd, shouldAnswerShapeMismatchWithInvalidArgumentNamingTheInput) {
  ClientHandle client(daemon_.socket_path());
  coproc_model* mlp = client.model("mlp");
  coproc_tensor in = arena_tensor(client.c, {2, 255});
  coproc_tensor out = arena_tensor(client.c, {2, 16});
  EXPECT_EQ(coproc_infer(client.c, mlp, &in, 1, &out, 1, 5'000'000'000),
            COPROC_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(coproc_last_error()).find("'x'"), std::string::npos) << coproc_last_error();
}

TEST_F(EndToEnd, shouldAnswerTooSmallOutputWithInvalidArgument) {
  ClientHandle client(daemon_.socket_path());
  coproc_model* mlp = client.model("mlp");
  coproc_tensor in = arena_tensor(client.c, {4, 256});
  coproc_tensor out = arena_tensor(client.c, {2, 16});
  EXPECT_EQ(coproc_infer(client.c, mlp, &in, 1, &out, 1, 5'000'000'000),
            COPROC_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(coproc_last_error()).find("needs 256 bytes"), std::string::npos)
      << coproc_last_error();
}

TEST_F(EndToEnd, shouldAnswerPastDeadlineWithDeadlineExceeded) {
  ClientHandle client(daemon_.socket_path());
  coproc_model* mlp = client.model("mlp");
  coproc_tensor in = arena_tensor(client.c, {1, 256});
  coproc_tensor out = arena_tensor(client.c, {1, 16});
  coproc_submit_options o;
  coproc_submit_options_init(&o);
  o.deadline_ns = coproc_now_ns() - 1;
  coproc_request* r = nullptr;
  ASSERT_EQ(coproc_submit(client.c, mlp, &in, 1, &out, 1, &o, &r), COPROC_OK);
  EXPECT_EQ(coproc_wait(r, 5'000'000'000), COPROC_ERR_DEADLINE_EXCEEDED);
  EXPECT_EQ(coproc_release(r), COPROC_OK);
}

TEST_F(EndToEnd, shouldRefuseTensorOutsideTheArenaInTheClientLibrary) {
  ClientHandle client(daemon_.socket_path());
  coproc_model* noop = client.model("noop");
  std::vector<float> heap(16);
  coproc_tensor in{};
  in.data = heap.data();
  in.bytes = 64;
  in.dtype = COPROC_DTYPE_FLOAT32;
  in.rank = 2;
  in.shape[0] = 1;
  in.shape[1] = 16;
  coproc_tensor out = arena_tensor(client.c, {1, 16});
  coproc_request* r = nullptr;
  EXPECT_EQ(coproc_submit(client.c, noop, &in, 1, &out, 1, nullptr, &r), COPROC_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(coproc_last_error()).find("arena"), std::string::npos);
}

}  // namespace
}  // namespace coproc::test
