// llama_reference: runs llama.cpp (libllama's public C API, include/llama.h of the vendored
// version) on a GGUF model and prints what coproc's LLM tests are held against. It is a one-off
// tool behind tools/llm/make_reference_fixtures.sh, which compiles it against the build of
// tools/llm/build_llamacpp.sh; it is not part of coproc's build.
//
//   llama_reference MODEL THREADS < requests > replies
//
// One request per line, fields separated by single spaces; TEXT is the prompt's UTF-8 bytes in
// hex, so that any byte (newlines included) fits on the line. One JSON object per line answers
// each request, in order:
//
//   info
//     {"n_vocab", "eog": [ids the vocabulary marks end-of-generation], "system_info",
//      "model_desc", "log": [llama.cpp's log lines that state the context's settings]}
//   greedy N_GEN PARSE_SPECIAL TEXT
//     The prompt tokenized (add_special = the model's own setting, parse_special as given),
//     decoded in one batch, then N_GEN tokens chosen greedily: each is the argmax of the last
//     logits (ties to the lower id) and is fed back, without stopping at end-of-generation.
//     {"prompt_ids", "ids", "top": per generated position the TOP_K best [id, logit] pairs,
//      best first, "pieces_hex": per generated token its text (special tokens rendered)}
//   forced N_UBATCH PARSE_SPECIAL TEXT [LOGITS_FILE]
//     Teacher forcing: the text tokenized, decoded with logits at every position in batches of
//     N_UBATCH tokens (n_batch = n_ubatch = N_UBATCH; 0 means the whole text at once).
//     {"ids", "top": per position the TOP_K best [id, logit] pairs}; with LOGITS_FILE, every
//     position's full logits are also written there as raw float32, row-major [n_tokens, n_vocab].
//
// Each request gets a fresh context (n_seq_max 1, n_ctx the smallest multiple of 256 that
// holds it), so requests never see each other's KV cache. Everything else is llama.cpp's
// defaults, as its users run it (flash attention "auto", f16 KV cache). Errors go to stderr and
// end the program with status 1.
#include <llama.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

constexpr int kTopK = 5;
constexpr int kContextGranule = 256;

std::vector<std::string> g_context_log;  // log lines about the context's settings

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "llama_reference: %s\n", message.c_str());
  std::exit(1);
}

// Keeps llama.cpp quiet except for warnings and errors, and remembers the lines that say how
// a context was set up (flash attention requested and resolved, the KV cache's types), which
// the fixtures record.
void on_log(ggml_log_level level, const char* text, void*) {
  std::string line(text);
  if (line.find("flash_attn") != std::string::npos ||
      line.find("Flash Attention") != std::string::npos || line.find(" K (") != std::string::npos) {
    while (!line.empty() && (line.back() == '\n' || line.back() == ' ')) line.pop_back();
    if (std::find(g_context_log.begin(), g_context_log.end(), line) == g_context_log.end()) {
      g_context_log.push_back(line);
    }
  }
  if (level == GGML_LOG_LEVEL_WARN || level == GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr);
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string hex_encode(const std::string& bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

std::string hex_decode(const std::string& hex) {
  if (hex.size() % 2 != 0) die("odd-length hex text");
  std::string out;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  return out;
}

std::string json_ids(const std::vector<llama_token>& ids) {
  std::string out = "[";
  for (std::size_t i = 0; i < ids.size(); ++i) out += (i ? "," : "") + std::to_string(ids[i]);
  return out + "]";
}

// The kTopK best [id, logit] pairs, best first; equal logits order by the lower id. Logits are
// printed with 9 significant digits, enough to give back the same float32.
std::string json_top(const float* logits, int n_vocab, llama_token* best) {
  std::vector<llama_token> order(n_vocab);
  for (int i = 0; i < n_vocab; ++i) order[i] = i;
  std::partial_sort(order.begin(), order.begin() + kTopK, order.end(), [&](int a, int b) {
    return logits[a] != logits[b] ? logits[a] > logits[b] : a < b;
  });
  *best = order[0];
  std::string out = "[";
  for (int k = 0; k < kTopK; ++k) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s[%d,%.9g]", k ? "," : "", order[k], logits[order[k]]);
    out += buf;
  }
  return out + "]";
}

std::vector<llama_token> tokenize(const llama_vocab* vocab, const std::string& text,
                                  bool parse_special) {
  const int n_max = static_cast<int>(text.size()) + 16;
  std::vector<llama_token> ids(n_max);
  const int n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), ids.data(),
                               n_max, /*add_special=*/true, parse_special);
  if (n < 0) die("llama_tokenize failed");
  ids.resize(n);
  return ids;
}

std::string piece(const llama_vocab* vocab, llama_token id) {
  char buf[256];
  const int n = llama_token_to_piece(vocab, id, buf, sizeof buf, 0, /*special=*/true);
  if (n < 0) die("llama_token_to_piece: piece too long for token " + std::to_string(id));
  return std::string(buf, n);
}

class Reference {
 public:
  Reference(const std::string& model_path, int threads) : threads_(threads) {
    llama_model_params mp = llama_model_default_params();
    model_ = llama_model_load_from_file(model_path.c_str(), mp);
    if (model_ == nullptr) die("cannot load " + model_path);
    vocab_ = llama_model_get_vocab(model_);
    n_vocab_ = llama_vocab_n_tokens(vocab_);
  }
  ~Reference() { llama_model_free(model_); }

  void info() {
    // One throwaway context so that its settings show up in the log.
    g_context_log.clear();
    llama_context* ctx = new_context(1, 1);
    llama_free(ctx);
    std::vector<llama_token> eog;
    for (llama_token id = 0; id < n_vocab_; ++id) {
      if (llama_vocab_is_eog(vocab_, id)) eog.push_back(id);
    }
    char desc[256];
    llama_model_desc(model_, desc, sizeof desc);
    std::string log = "[";
    for (std::size_t i = 0; i < g_context_log.size(); ++i) {
      log += (i ? "," : "") + json_string(g_context_log[i]);
    }
    std::cout << "{\"n_vocab\":" << n_vocab_ << ",\"eog\":" << json_ids(eog)
              << ",\"system_info\":" << json_string(llama_print_system_info())
              << ",\"model_desc\":" << json_string(desc) << ",\"log\":" << log << "]}\n";
  }

  void greedy(int n_gen, bool parse_special, const std::string& text) {
    const std::vector<llama_token> prompt = tokenize(vocab_, text, parse_special);
    if (prompt.empty()) die("greedy: empty prompt");
    const int n_prompt = static_cast<int>(prompt.size());
    llama_context* ctx = new_context(n_prompt + n_gen, n_prompt);
    decode(ctx, prompt, 0, /*all_logits=*/false);
    std::vector<llama_token> generated;
    std::string top = "[", pieces = "[";
    for (int i = 0; i < n_gen; ++i) {
      llama_token best;
      top += (i ? "," : "") + json_top(logits(ctx, -1), n_vocab_, &best);
      pieces += (i ? ",\"" : "\"") + hex_encode(piece(vocab_, best)) + "\"";
      generated.push_back(best);
      if (i + 1 < n_gen) decode(ctx, {best}, n_prompt + i, /*all_logits=*/true);
    }
    llama_free(ctx);
    std::cout << "{\"prompt_ids\":" << json_ids(prompt) << ",\"ids\":" << json_ids(generated)
              << ",\"top\":" << top << "],\"pieces_hex\":" << pieces << "]}\n";
  }

  void forced(int n_ubatch, bool parse_special, const std::string& text,
              const std::string& logits_path) {
    const std::vector<llama_token> ids = tokenize(vocab_, text, parse_special);
    const int n = static_cast<int>(ids.size());
    if (n == 0) die("forced: empty text");
    const int step = n_ubatch > 0 ? n_ubatch : n;
    llama_context* ctx = new_context(n, step);
    FILE* out = nullptr;
    if (!logits_path.empty() && (out = std::fopen(logits_path.c_str(), "wb")) == nullptr) {
      die("cannot write " + logits_path);
    }
    std::string top = "[";
    for (int start = 0; start < n; start += step) {
      const int count = std::min(step, n - start);
      decode(ctx, std::vector<llama_token>(ids.begin() + start, ids.begin() + start + count), start,
             /*all_logits=*/true);
      for (int j = 0; j < count; ++j) {
        const float* row = logits(ctx, j);
        llama_token best;
        top += (start + j ? "," : "") + json_top(row, n_vocab_, &best);
        if (out != nullptr && std::fwrite(row, sizeof(float), n_vocab_, out) != size_t(n_vocab_)) {
          die("short write to " + logits_path);
        }
      }
    }
    if (out != nullptr && std::fclose(out) != 0) die("cannot close " + logits_path);
    llama_free(ctx);
    std::cout << "{\"ids\":" << json_ids(ids) << ",\"top\":" << top << "]}\n";
  }

 private:
  llama_context* new_context(int n_tokens, int n_batch) {
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = static_cast<uint32_t>((n_tokens + kContextGranule - 1) / kContextGranule *
                                     kContextGranule);
    cp.n_batch = cp.n_ubatch = static_cast<uint32_t>(n_batch);
    cp.n_seq_max = 1;
    cp.n_threads = cp.n_threads_batch = threads_;
    llama_context* ctx = llama_init_from_model(model_, cp);
    if (ctx == nullptr) die("llama_init_from_model failed");
    return ctx;
  }

  // Tokens at positions first_pos.. of sequence 0; logits at every one, or only at the last.
  static void decode(llama_context* ctx, const std::vector<llama_token>& tokens, int first_pos,
                     bool all_logits) {
    const int n = static_cast<int>(tokens.size());
    llama_batch batch = llama_batch_init(n, 0, 1);
    batch.n_tokens = n;
    for (int i = 0; i < n; ++i) {
      batch.token[i] = tokens[i];
      batch.pos[i] = first_pos + i;
      batch.n_seq_id[i] = 1;
      batch.seq_id[i][0] = 0;
      batch.logits[i] = all_logits || i == n - 1;
    }
    const int rc = llama_decode(ctx, batch);
    llama_batch_free(batch);
    if (rc != 0) die("llama_decode returned " + std::to_string(rc));
  }

  static const float* logits(llama_context* ctx, int i) {
    const float* row = llama_get_logits_ith(ctx, i);
    if (row == nullptr) die("no logits for output " + std::to_string(i));
    return row;
  }

  llama_model* model_ = nullptr;
  const llama_vocab* vocab_ = nullptr;
  int n_vocab_ = 0;
  int threads_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) die("usage: llama_reference MODEL THREADS < requests");
  llama_log_set(on_log, nullptr);
  llama_backend_init();
  {
    Reference ref(argv[1], std::atoi(argv[2]));
    std::string line;
    while (std::getline(std::cin, line)) {
      std::istringstream fields(line);
      std::string kind;
      fields >> kind;
      if (kind == "info") {
        ref.info();
      } else if (kind == "greedy") {
        int n_gen = 0, special = 0;
        std::string hex;
        fields >> n_gen >> special >> hex;
        ref.greedy(n_gen, special != 0, hex_decode(hex));
      } else if (kind == "forced") {
        int n_ubatch = 0, special = 0;
        std::string hex, logits_path;
        fields >> n_ubatch >> special >> hex >> logits_path;
        ref.forced(n_ubatch, special != 0, hex_decode(hex), logits_path);
      } else if (!kind.empty()) {
        die("unknown request '" + kind + "'");
      }
      std::cout.flush();
    }
  }
  llama_backend_free();
  return 0;
}
