// Recoverable failures inside the daemon are values, not exceptions: a
// Result<T> holds either a T or an Error with a code a caller can branch on and
// a message a person can read. Broken invariants (programmer errors) abort via
// COPROC_CHECK instead.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <variant>

namespace coproc {

// The wire statuses of the status table (status.def), which also ties them to
// coproc.fb.Status on the wire and coproc_status in the C API; the numeric
// values are part of the protocol.
enum class ErrorCode : int {
#define COPROC_STATUS(Name, value, UPPER_NAME, snake_name) k##Name = value,
#include "coproc/base/status.def"
};

// How many wire statuses there are; they are numbered 0 .. kErrorCodeCount - 1.
inline constexpr int kErrorCodeCount = 0
#define COPROC_STATUS(Name, value, UPPER_NAME, snake_name) +1
#include "coproc/base/status.def"
    ;

namespace detail {
// Tables indexed by status value (the stats page's counters, their names)
// rely on the values being 0, 1, 2, ... in the table's order.
constexpr bool status_values_are_dense() {
  int next = 0;
  bool dense = true;
#define COPROC_STATUS(Name, value, UPPER_NAME, snake_name) dense = dense && (value) == next++;
#include "coproc/base/status.def"
  return dense;
}
static_assert(status_values_are_dense(),
              "status.def: wire statuses must be numbered 0, 1, 2, ... in order");
}  // namespace detail

// "INVALID_ARGUMENT": the status table's UPPER_NAME; "UNKNOWN" for a value outside it.
const char* error_code_name(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& value() const& { return std::get<0>(v_); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() { return std::get<0>(v_); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

inline Error make_error(ErrorCode code, std::string message) {
  return Error{code, std::move(message)};
}

}  // namespace coproc

// Programmer errors: a broken invariant aborts loudly with its location.
#define COPROC_CHECK(cond)                                                                \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)
