// The reference model of the LLM tests, SmolLM2-135M-Instruct Q4_1 (build/models, target
// coproc_llm_models), loaded once per test binary.
#pragma once

#include <memory>

#include "llm/model.h"

namespace coproc::llm::testing {

// The loaded model; the calling test fails (fatally) if it cannot be loaded.
std::shared_ptr<const Model> reference_model();

}  // namespace coproc::llm::testing
