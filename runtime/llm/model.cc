#include "llm/model.h"

#include <fmt/format.h>

#include "llm/arch.h"
#include "llm/vocab.h"

namespace coproc::llm {

Model::~Model() = default;

Result<std::shared_ptr<const Model>> Model::load(const std::string& path) {
  auto file = GgufFile::open(path);
  if (!file) return file.error();
  std::shared_ptr<Model> model(new Model());
  model->file_ = std::move(*file);
  auto arch_name = model->file_->get_string("general.architecture");
  if (!arch_name) return arch_name.error();
  model->arch_ = find_architecture(*arch_name);
  if (model->arch_ == nullptr) {
    return make_error(ErrorCode::kUnsupported,
                      fmt::format("{}: architecture '{}' is not supported (coproc runs: llama)", path, *arch_name));
  }
  if (Status st = model->arch_->load(*model->file_, &model->hparams_, &model->weights_); !st) {
    return make_error(st.error().code, fmt::format("{}: {}", path, st.error().message));
  }
  auto vocab = Vocab::from_gguf(*model->file_);
  if (!vocab) return make_error(vocab.error().code, fmt::format("{}: {}", path, vocab.error().message));
  model->vocab_ = std::move(*vocab);
  if (model->vocab_->n_tokens() != model->hparams_.n_vocab) {
    return make_error(ErrorCode::kBadModel, fmt::format("{}: the vocabulary has {} tokens, the output head {} rows", path,
                                                        model->vocab_->n_tokens(), model->hparams_.n_vocab));
  }
  return std::shared_ptr<const Model>(std::move(model));
}

int64_t Model::weight_bytes_per_step() const {
  auto bytes = [](const Matrix& m) {
    return m.type == GgmlType::kF32 ? m.rows * m.cols * 4 : m.rows * row_bytes(m.type, m.cols);
  };
  int64_t total = bytes(weights_.output);
  for (const LayerWeights& l : weights_.layers) {
    for (const Matrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.gate, &l.up, &l.down}) total += bytes(*m);
  }
  return total;
}

}  // namespace coproc::llm
