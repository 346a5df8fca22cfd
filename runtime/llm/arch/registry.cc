#include "llm/arch.h"

namespace coproc::llm {

const Architecture& llama_architecture();

const Architecture* find_architecture(std::string_view name) {
  // "llama" covers the Llama, Mistral and SmolLM families that GGUF stores under that name.
  if (name == "llama") return &llama_architecture();
  return nullptr;
}

}  // namespace coproc::llm
