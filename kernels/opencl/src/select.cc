// Choosing a device by name or index (Selector's rules), apart from opening it, so that the
// daemon can find the device's NUMA node before it places itself and opens anything.
#include <algorithm>
#include <cctype>
#include <string>

#include "coproc/kernels/opencl.h"

namespace coproc::kernels::opencl {
namespace {

bool contains_ignoring_case(const std::string& text, const std::string& part) {
  const auto lower = [](std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
  };
  return lower(text).find(lower(part)) != std::string::npos;
}

bool matches(const DeviceInfo& d, const Selector& s) {
  return (s.platform_index < 0 || d.platform_index == s.platform_index) &&
         (s.device_index < 0 || d.device_index == s.device_index) &&
         (s.platform.empty() || contains_ignoring_case(d.platform, s.platform)) &&
         (s.device.empty() || contains_ignoring_case(d.name, s.device));
}

}  // namespace

int find_device(const std::vector<DeviceInfo>& devices, const Selector& selector,
                std::string* error) {
  int first = -1;
  for (std::size_t i = 0; i < devices.size(); ++i) {
    if (!matches(devices[i], selector)) continue;
    if (first < 0) first = static_cast<int>(i);
    // With no device named, a GPU is preferred over whatever comes first.
    if (selector.device.empty() && selector.device_index < 0 && devices[i].is_gpu) {
      return static_cast<int>(i);
    }
  }
  if (first >= 0) return first;
  std::string available;
  for (const DeviceInfo& d : devices) {
    available += (available.empty() ? "" : "; ") + std::to_string(d.platform_index) + ":" +
                 std::to_string(d.device_index) + " " + d.platform + " / " + d.name;
  }
  if (error != nullptr) {
    *error =
        "no OpenCL device matches platform '" +
        (selector.platform_index >= 0 ? std::to_string(selector.platform_index)
                                      : selector.platform) +
        "', device '" +
        (selector.device_index >= 0 ? std::to_string(selector.device_index) : selector.device) +
        "'; " + (available.empty() ? "there is no OpenCL platform" : "there are: " + available);
  }
  return -1;
}

}  // namespace coproc::kernels::opencl
