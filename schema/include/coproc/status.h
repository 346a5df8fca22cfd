// coproc.fb.Status (generated from coproc.fbs) is the status table's (coproc/base/status.def),
// value by value, so a status crosses between coproc::ErrorCode, the wire and coproc_status with
// a plain conversion. flatc cannot read the table, so the enum is written out in coproc.fbs and
// checked here: a file that converts between the wire's Status and anything else includes this.
#pragma once

#include <cstdint>

#include "coproc/base/result.h"
#include "coproc/coproc_generated.h"
#include "coproc/segment.h"

namespace coproc::wire {

#define COPROC_STATUS(Name, value, UPPER_NAME, snake_name)     \
  static_assert(static_cast<int>(fb::Status::Name) == (value), \
                "coproc.fbs: Status::" #Name " differs from status.def");
#include "coproc/base/status.def"
static_assert(static_cast<uint32_t>(fb::Status::MAX) + 1 == kStatusCount,
              "coproc.fbs: Status has a value the status table (status.def) lacks");

constexpr fb::Status to_fb(ErrorCode code) { return static_cast<fb::Status>(code); }

}  // namespace coproc::wire
