#include "coproc/base/result.h"

namespace coproc {

const char* error_code_name(ErrorCode code) {
  switch (code) {
#define COPROC_STATUS(Name, value, UPPER_NAME, snake_name) \
  case ErrorCode::k##Name:                                 \
    return #UPPER_NAME;
#include "coproc/base/status.def"
  }
  return "UNKNOWN";
}

}  // namespace coproc
