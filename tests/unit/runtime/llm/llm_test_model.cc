#include "llm_test_model.h"

#include <gtest/gtest.h>

namespace coproc::llm::testing {

std::shared_ptr<const Model> reference_model() {
  static std::shared_ptr<const Model> model = [] {
    auto loaded = Model::load(COPROC_LLM_MODEL);
    EXPECT_TRUE(loaded.ok()) << (loaded.ok() ? "" : loaded.error().message);
    return loaded.ok() ? *loaded : nullptr;
  }();
  if (model == nullptr) ADD_FAILURE() << "cannot load " << COPROC_LLM_MODEL;
  return model;
}

}  // namespace coproc::llm::testing
