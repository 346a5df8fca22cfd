// all-MiniLM-L6-v2 served by coprocd, checked against references nobody here computed:
//  - ONNX Runtime on the same ONNX file (120 inputs, 8 to 256 tokens), and
//  - sentence-transformers, the model's own reference implementation (the committed fixture's 40
//    sentences).
// Several clients submit concurrently with requests in flight, so the dispatcher groups inputs of
// different lengths, zero-pads ids and mask to a length bucket and crops nothing (the embedding
// has no length dim): the padded positions must not change any embedding.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "support/daemon_process.h"
#include "support/test_client.h"

namespace coproc::test {
namespace {

constexpr int kDim = 384;
constexpr double kMinCosine = 0.99999;
constexpr double kMaxAbsDiff = 1e-4;

struct Case {
  std::string id;
  std::string source;
  std::vector<int64_t> ids;
  std::vector<float> embedding;
};

template <class T>
std::vector<T> read_raw(const std::string& path, std::size_t count) {
  std::vector<T> v(count);
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(count * sizeof(T)));
  EXPECT_TRUE(in.good()) << path;
  return v;
}

std::vector<Case> load_cases() {
  const std::string dir = models_dir() + "/minilm_ref/";
  std::ifstream manifest(dir + "manifest.txt");
  EXPECT_TRUE(manifest.good()) << "missing " << dir << "manifest.txt (tools/make_minilm_reference.py)";
  std::vector<Case> cases;
  std::string line;
  while (std::getline(manifest, line)) {
    std::istringstream words(line);
    Case c;
    std::size_t length = 0;
    std::string ids_file, emb_file;
    if (!(words >> c.id >> c.source >> length >> ids_file >> emb_file)) continue;
    c.ids = read_raw<int64_t>(dir + ids_file, length);
    c.embedding = read_raw<float>(dir + emb_file, kDim);
    cases.push_back(std::move(c));
  }
  return cases;
}

std::string write_config(int max_wait_us = 5000) {
  const std::string path = "/tmp/coproc-test-" + std::to_string(::getpid()) + "-minilm.toml";
  std::ofstream(path) << "[[model]]\nname = \"minilm\"\npath = \"" << models_dir()
                      << "/all-MiniLM-L6-v2.onnx\"\nmode = \"dynamic\"\nmax_batch = 8\n"
                      << "max_wait_us = " << max_wait_us
                      << "\nlength_buckets = [16, 32, 64, 128, 256]\n";
  return path;
}

coproc_tensor int64_tensor(coproc_client* c, int64_t length, const int64_t* data) {
  coproc_tensor t{};
  t.dtype = COPROC_DTYPE_INT64;
  t.rank = 2;
  t.shape[0] = 1;
  t.shape[1] = length;
  t.bytes = static_cast<uint64_t>(length) * sizeof(int64_t);
  EXPECT_EQ(coproc_alloc(c, t.bytes, &t.data), COPROC_OK) << coproc_last_error();
  if (t.data != nullptr) std::memcpy(t.data, data, t.bytes);
  return t;
}

struct Outcome {
  double cosine = 0;
  double max_abs = 0;
  uint32_t batch_size = 0;
  bool done = false;
  std::string error;
};

// Submits `mine` (indices into cases) with up to `in_flight` requests outstanding.
void run_client(const std::string& socket, const std::vector<Case>& cases,
                const std::vector<std::size_t>& mine, int in_flight, std::vector<Outcome>* out) {
  ClientHandle client(socket);
  if (client.status != COPROC_OK) {
    for (std::size_t k : mine) (*out)[k].error = "connect failed";
    return;
  }
  coproc_model* model = client.model("minilm");
  struct Pending {
    std::size_t k;
    coproc_request* request;
    coproc_tensor in[2];
    coproc_tensor emb;
  };
  std::vector<Pending> pending;
  const auto finish = [&](Pending& p) {
    Outcome& o = (*out)[p.k];
    if (coproc_wait(p.request, 30'000'000'000) != COPROC_OK) {
      o.error = coproc_last_error();
    } else {
      const float* got = floats(p.emb);
      const std::vector<float>& want = cases[p.k].embedding;
      double dot = 0, ng = 0, nw = 0;
      for (int d = 0; d < kDim; ++d) {
        dot += static_cast<double>(got[d]) * want[static_cast<std::size_t>(d)];
        ng += static_cast<double>(got[d]) * got[d];
        nw += static_cast<double>(want[static_cast<std::size_t>(d)]) * want[static_cast<std::size_t>(d)];
        o.max_abs = std::max(o.max_abs, std::fabs(static_cast<double>(got[d]) - want[static_cast<std::size_t>(d)]));
      }
      o.cosine = dot / std::sqrt(ng * nw);
      coproc_timing timing;
      if (coproc_request_timing(p.request, &timing) == COPROC_OK) o.batch_size = timing.batch_size;
      o.done = true;
    }
    coproc_release(p.request);
    for (coproc_tensor* t : {&p.in[0], &p.in[1], &p.emb}) coproc_free(client.c, t->data);
  };
  for (const std::size_t k : mine) {
    const Case& c = cases[k];
    const auto length = static_cast<int64_t>(c.ids.size());
    const std::vector<int64_t> mask(c.ids.size(), 1);
    Pending p{k, nullptr, {int64_tensor(client.c, length, c.ids.data()),
                           int64_tensor(client.c, length, mask.data())},
              arena_tensor(client.c, {1, kDim})};
    if (coproc_submit(client.c, model, p.in, 2, &p.emb, 1, nullptr, &p.request) != COPROC_OK) {
      (*out)[k].error = std::string("submit: ") + coproc_last_error();
      continue;
    }
    pending.push_back(p);
    if (static_cast<int>(pending.size()) >= in_flight) {
      finish(pending.front());
      pending.erase(pending.begin());
    }
  }
  for (Pending& p : pending) finish(p);
}

TEST(MiniLM, shouldMatchOnnxRuntimeAndSentenceTransformersThroughTheDaemonWithPaddedBatches) {
  const std::vector<Case> cases = load_cases();
  ASSERT_GE(cases.size(), 140u);
  DaemonProcess daemon({"--config", write_config()});
  ASSERT_TRUE(daemon.started()) << daemon.log();

  constexpr int kClients = 4;
  std::vector<Outcome> outcomes(cases.size());
  std::vector<std::thread> threads;
  for (int t = 0; t < kClients; ++t) {
    std::vector<std::size_t> mine;
    for (std::size_t k = static_cast<std::size_t>(t); k < cases.size(); k += kClients) mine.push_back(k);
    threads.emplace_back(run_client, daemon.socket_path(), std::cref(cases), mine, 3, &outcomes);
  }
  for (std::thread& t : threads) t.join();

  int ort_cases = 0, st_cases = 0, min_len = 1 << 30, max_len = 0;
  uint32_t biggest_batch = 0;
  double worst_cos = 1, worst_abs = 0;
  for (std::size_t k = 0; k < cases.size(); ++k) {
    const Outcome& o = outcomes[k];
    ASSERT_TRUE(o.done) << cases[k].id << ": " << o.error;
    EXPECT_GE(o.cosine, kMinCosine) << cases[k].id << " (" << cases[k].source << ", "
                                    << cases[k].ids.size() << " tokens)";
    EXPECT_LE(o.max_abs, kMaxAbsDiff) << cases[k].id << " (" << cases[k].source << ", "
                                      << cases[k].ids.size() << " tokens)";
    worst_cos = std::min(worst_cos, o.cosine);
    worst_abs = std::max(worst_abs, o.max_abs);
    biggest_batch = std::max(biggest_batch, o.batch_size);
    if (cases[k].source == "onnxruntime") {
      ++ort_cases;
      min_len = std::min(min_len, static_cast<int>(cases[k].ids.size()));
      max_len = std::max(max_len, static_cast<int>(cases[k].ids.size()));
    } else {
      ++st_cases;
    }
  }
  EXPECT_GE(ort_cases, 100);
  EXPECT_LE(min_len, 8);
  EXPECT_GE(max_len, 256);
  EXPECT_GE(st_cases, 30);
  EXPECT_GT(biggest_batch, 1u) << "no batch formed: padding was not exercised";
  std::printf("MiniLM parity: %d ONNX Runtime + %d sentence-transformers cases, worst cosine "
              "%.9f, worst max abs diff %.3g, biggest batch %u\n",
              ort_cases, st_cases, worst_cos, worst_abs, biggest_batch);
}

TEST(MiniLM, shouldFailOnlyTheRequestWithATokenIdOutOfRangeAndServeItsBatchMates) {
  const std::vector<Case> cases = load_cases();
  ASSERT_GE(cases.size(), 4u);
  // A long max_wait, so the four requests below ride in one batch.
  DaemonProcess daemon({"--config", write_config(200'000)});
  ASSERT_TRUE(daemon.started()) << daemon.log();
  ClientHandle client(daemon.socket_path());
  coproc_model* model = client.model("minilm");
  constexpr int kBad = 2;
  std::vector<coproc_request*> requests(4);
  std::vector<coproc_tensor> embeddings;
  for (int k = 0; k < 4; ++k) {
    std::vector<int64_t> ids = cases[static_cast<std::size_t>(k)].ids;
    if (k == kBad) ids[1] = 40'000;  // the vocabulary has 30522 rows
    const std::vector<int64_t> mask(ids.size(), 1);
    coproc_tensor in[2] = {int64_tensor(client.c, static_cast<int64_t>(ids.size()), ids.data()),
                           int64_tensor(client.c, static_cast<int64_t>(ids.size()), mask.data())};
    embeddings.push_back(arena_tensor(client.c, {1, kDim}));
    ASSERT_EQ(coproc_submit(client.c, model, in, 2, &embeddings.back(), 1, nullptr, &requests[static_cast<std::size_t>(k)]),
              COPROC_OK);
  }
  for (int k = 0; k < 4; ++k) {
    const coproc_status status = coproc_wait(requests[static_cast<std::size_t>(k)], 30'000'000'000);
    if (k == kBad) {
      EXPECT_EQ(status, COPROC_ERR_INVALID_ARGUMENT);
      EXPECT_NE(std::string(coproc_last_error()).find("out of range"), std::string::npos)
          << coproc_last_error();
    } else {
      ASSERT_EQ(status, COPROC_OK) << "request " << k << ": " << coproc_last_error();
      const float* got = floats(embeddings[static_cast<std::size_t>(k)]);
      const std::vector<float>& want = cases[static_cast<std::size_t>(k)].embedding;
      for (int d = 0; d < kDim; ++d) ASSERT_NEAR(got[d], want[static_cast<std::size_t>(d)], kMaxAbsDiff) << k;
    }
    coproc_release(requests[static_cast<std::size_t>(k)]);
  }
}

}  // namespace
}  // namespace coproc::test
