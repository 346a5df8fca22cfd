#include "llm/device.h"

namespace coproc::llm {

Result<std::unique_ptr<LlmDevice>> make_opencl_device(const DeviceChoice&, const Model&, const KvCache&) {
  return make_error(ErrorCode::kUnavailable, "the LLM engine has no OpenCL device yet");
}

}  // namespace coproc::llm
