// The OpenCL device: finding devices, opening one, memory and copies, and finish(). The kernels
// are enqueued by kernels.cc, the GEMMs by gemm.cc.
#include <CL/cl.h>
#include <CL/cl_ext.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "cl_sources.h"
#include "impl.h"
#include "kernel_codes.h"
#include "layout.h"

namespace coproc::kernels::opencl {

using detail::KernelId;
using detail::report;

namespace {

// Work items per group where the kernel allows as many: a multiple of every GPU's SIMD width,
// and few enough that PoCL's work-group loops stay short.
constexpr std::size_t kGroupSize = 256;

std::string platform_string(cl_platform_id platform, cl_platform_info what) {
  std::size_t size = 0;
  if (clGetPlatformInfo(platform, what, 0, nullptr, &size) != CL_SUCCESS || size == 0) return {};
  std::string s(size, '\0');
  if (clGetPlatformInfo(platform, what, size, s.data(), nullptr) != CL_SUCCESS) return {};
  s.resize(std::strlen(s.c_str()));  // OpenCL counts the terminating NUL
  return s;
}

std::string device_string(cl_device_id device, cl_device_info what) {
  std::size_t size = 0;
  if (clGetDeviceInfo(device, what, 0, nullptr, &size) != CL_SUCCESS || size == 0) return {};
  std::string s(size, '\0');
  if (clGetDeviceInfo(device, what, size, s.data(), nullptr) != CL_SUCCESS) return {};
  s.resize(std::strlen(s.c_str()));
  return s;
}

template <class T>
T device_value(cl_device_id device, cl_device_info what) {
  T value{};
  if (clGetDeviceInfo(device, what, sizeof value, &value, nullptr) != CL_SUCCESS) return T{};
  return value;
}

// The NUMA node of the device's PCI slot: cl_khr_pci_bus_info names the slot, sysfs its node
// (-1 there too on a machine without NUMA). -1 when either is missing: CPU devices, drivers
// without the extension, containers without /sys.
int numa_node(cl_device_id device) {
  if (device_string(device, CL_DEVICE_EXTENSIONS).find("cl_khr_pci_bus_info") ==
      std::string::npos) {
    return -1;
  }
  cl_device_pci_bus_info_khr bus{};
  if (clGetDeviceInfo(device, CL_DEVICE_PCI_BUS_INFO_KHR, sizeof bus, &bus, nullptr) !=
      CL_SUCCESS) {
    return -1;
  }
  char path[96];
  std::snprintf(path, sizeof path, "/sys/bus/pci/devices/%04x:%02x:%02x.%x/numa_node",
                bus.pci_domain, bus.pci_bus, bus.pci_device, bus.pci_function);
  std::ifstream in(path);
  int node = -1;
  return in >> node ? node : -1;
}

struct Found {
  cl_device_id id = nullptr;
  DeviceInfo info;
};

// Every device of every platform. Platforms that fail to answer are passed over: one broken
// driver must not hide the others.
std::vector<Found> enumerate_devices() {
  cl_uint platform_count = 0;
  if (clGetPlatformIDs(0, nullptr, &platform_count) != CL_SUCCESS || platform_count == 0) {
    return {};
  }
  std::vector<cl_platform_id> platforms(platform_count);
  if (clGetPlatformIDs(platform_count, platforms.data(), nullptr) != CL_SUCCESS) return {};
  std::vector<Found> found;
  for (cl_uint p = 0; p < platform_count; ++p) {
    cl_uint device_count = 0;
    if (clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, 0, nullptr, &device_count) != CL_SUCCESS) {
      continue;  // CL_DEVICE_NOT_FOUND: a platform without devices
    }
    std::vector<cl_device_id> devices(device_count);
    if (clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, device_count, devices.data(), nullptr) !=
        CL_SUCCESS) {
      continue;
    }
    const std::string platform = platform_string(platforms[p], CL_PLATFORM_NAME);
    for (cl_uint d = 0; d < device_count; ++d) {
      const cl_device_id id = devices[d];
      DeviceInfo info;
      info.platform_index = static_cast<int>(p);
      info.device_index = static_cast<int>(d);
      info.platform = platform;
      info.name = device_string(id, CL_DEVICE_NAME);
      info.version = device_string(id, CL_DEVICE_VERSION);
      info.is_gpu = (device_value<cl_device_type>(id, CL_DEVICE_TYPE) & CL_DEVICE_TYPE_GPU) != 0;
      info.global_memory_bytes = device_value<cl_ulong>(id, CL_DEVICE_GLOBAL_MEM_SIZE);
      info.compute_units = device_value<cl_uint>(id, CL_DEVICE_MAX_COMPUTE_UNITS);
      info.clock_mhz = device_value<cl_uint>(id, CL_DEVICE_MAX_CLOCK_FREQUENCY);
      info.numa_node = numa_node(id);
      found.push_back({id, std::move(info)});
    }
  }
  return found;
}

// The largest power of two that is at most both limits.
std::size_t power_of_two_at_most(std::size_t a, std::size_t b) {
  const std::size_t limit = std::max<std::size_t>(1, std::min(a, b));
  std::size_t p = 1;
  while (p * 2 <= limit) p *= 2;
  return p;
}

}  // namespace

std::size_t dtype_bytes(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
    case DType::kInt32:
      return 4;
    case DType::kInt64:
      return 8;
    case DType::kBool:
      return 1;
  }
  return 1;
}

int64_t Strided::elements() const { return detail::product(dims, rank); }

std::vector<DeviceInfo> list_devices() {
  std::vector<DeviceInfo> devices;
  for (Found& f : enumerate_devices()) devices.push_back(std::move(f.info));
  return devices;
}

// ---------------------------------------------------------------- Buffer

namespace {
std::atomic<std::size_t> g_buffer_bytes{0};
}  // namespace

std::size_t buffer_bytes_in_use() { return g_buffer_bytes.load(std::memory_order_relaxed); }

Buffer::Buffer(cl_mem buffer, std::size_t bytes) : buffer_(buffer), bytes_(bytes) {
  if (buffer_ != nullptr) g_buffer_bytes.fetch_add(bytes_, std::memory_order_relaxed);
}

Buffer::~Buffer() {
  // A pinned buffer is released while still mapped (its owner has no queue to unmap it on);
  // OpenCL frees the mapping with the object.
  if (buffer_ != nullptr) {
    clReleaseMemObject(buffer_);
    g_buffer_bytes.fetch_sub(bytes_, std::memory_order_relaxed);
  }
}

Buffer::Buffer(Buffer&& other) noexcept
    : buffer_(std::exchange(other.buffer_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  std::swap(buffer_, other.buffer_);
  std::swap(bytes_, other.bytes_);
  return *this;
}

// ---------------------------------------------------------------- Impl

Device::Impl::~Impl() {
  // Commands still queued may read host memory their callers are about to free.
  if (queue != nullptr) clFinish(queue);
  if (transfer != nullptr) clFinish(transfer);
  for (cl_kernel k : kernels) {
    if (k != nullptr) clReleaseKernel(k);
  }
  if (program != nullptr) clReleaseProgram(program);
  if (gather_record != nullptr) clReleaseMemObject(gather_record);
  if (gemm_temp != nullptr) clReleaseMemObject(gemm_temp);
  if (transfer != nullptr) clReleaseCommandQueue(transfer);
  if (queue != nullptr) clReleaseCommandQueue(queue);
  if (context != nullptr) clReleaseContext(context);
}

void Device::Impl::fail(const std::string& message) {
  if (error.empty()) error = message;
}

bool Device::Impl::check(cl_int status, const char* call, const char* api) {
  if (status == CL_SUCCESS) return true;
  fail(std::string(call) + ": " + api + ": " + detail::cl_error_name(status));
  return false;
}

std::optional<int64_t> Device::Impl::element_offset(Mem m, std::size_t element_bytes,
                                                    const char* call) {
  if (m.offset % element_bytes == 0) return static_cast<int64_t>(m.offset / element_bytes);
  fail(std::string(call) + ": byte offset " + std::to_string(m.offset) +
       " is not a multiple of the element size " + std::to_string(element_bytes));
  return std::nullopt;
}

void Device::Impl::enqueue(KernelId id, const char* call, std::size_t global, std::size_t local) {
  const cl_int status =
      clEnqueueNDRangeKernel(queue, kernel(id), 1, nullptr, &global, &local, 0, nullptr, nullptr);
  if (status != CL_SUCCESS) {
    fail(std::string(call) + ": clEnqueueNDRangeKernel(" + detail::kernel_name(id) +
         "): " + detail::cl_error_name(status));
  }
}

bool Device::Impl::build_program(std::string* message) {
  const auto sources = detail::program_sources();
  cl_int status = CL_SUCCESS;
  program = clCreateProgramWithSource(context, static_cast<cl_uint>(sources.size()),
                                      const_cast<const char**>(sources.data()), nullptr, &status);
  if (status != CL_SUCCESS) {
    report(message, "clCreateProgramWithSource: " + detail::cl_error_name(status));
    return false;
  }
  // Division and sqrt correctly rounded where the device can, as the CPU device's are; OpenCL
  // otherwise allows 2.5 ulp for division and 3 for sqrt.
  std::string options = "-cl-std=CL1.2";
  if ((device_value<cl_device_fp_config>(device, CL_DEVICE_SINGLE_FP_CONFIG) &
       CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT) != 0) {
    options += " -cl-fp32-correctly-rounded-divide-sqrt";
  }
  status = clBuildProgram(program, 1, &device, options.c_str(), nullptr, nullptr);
  if (status != CL_SUCCESS) {
    std::size_t size = 0;
    clGetProgramBuildInfo(program, device, CL_PROGRAM_BUILD_LOG, 0, nullptr, &size);
    std::string log(size, '\0');
    clGetProgramBuildInfo(program, device, CL_PROGRAM_BUILD_LOG, size, log.data(), nullptr);
    log.resize(std::strlen(log.c_str()));
    report(message, "building the OpenCL program (" + options +
                        ") failed: " + detail::cl_error_name(status) + "\n" + log);
    return false;
  }
  for (std::size_t i = 0; i < detail::kKernelCount; ++i) {
    const char* name = detail::kernel_name(static_cast<KernelId>(i));
    kernels[i] = clCreateKernel(program, name, &status);
    if (status != CL_SUCCESS) {
      report(message,
             std::string("clCreateKernel(") + name + "): " + detail::cl_error_name(status));
      return false;
    }
    std::size_t most = 0;
    status = clGetKernelWorkGroupInfo(kernels[i], device, CL_KERNEL_WORK_GROUP_SIZE, sizeof most,
                                      &most, nullptr);
    if (status != CL_SUCCESS) {
      report(message, std::string("clGetKernelWorkGroupInfo(") + name +
                          "): " + detail::cl_error_name(status));
      return false;
    }
    local_sizes[i] = power_of_two_at_most(kGroupSize, most);
  }
  return true;
}

bool Device::Impl::create(std::string* message) {
  cl_int status = CL_SUCCESS;
  context = clCreateContext(nullptr, 1, &device, nullptr, nullptr, &status);
  if (status != CL_SUCCESS) {
    report(message, "clCreateContext: " + detail::cl_error_name(status));
    return false;
  }
  queue = clCreateCommandQueue(context, device, 0, &status);
  if (status != CL_SUCCESS) {
    report(message, "clCreateCommandQueue: " + detail::cl_error_name(status));
    return false;
  }
  transfer = clCreateCommandQueue(context, device, 0, &status);
  if (status != CL_SUCCESS) {
    report(message, "clCreateCommandQueue (transfers): " + detail::cl_error_name(status));
    return false;
  }
  if (!build_program(message)) return false;
  constexpr std::size_t kRecordBytes = COPROC_GATHER_RECORD_INTS * sizeof(cl_int);
  gather_record = clCreateBuffer(context, CL_MEM_READ_WRITE, kRecordBytes, nullptr, &status);
  if (status != CL_SUCCESS) {
    report(message, "clCreateBuffer(gather record): " + detail::cl_error_name(status));
    return false;
  }
  const cl_int zeros[COPROC_GATHER_RECORD_INTS] = {};
  status = clEnqueueWriteBuffer(queue, gather_record, CL_TRUE, 0, kRecordBytes, zeros, 0, nullptr,
                                nullptr);
  if (status != CL_SUCCESS) {
    report(message, "clEnqueueWriteBuffer(gather record): " + detail::cl_error_name(status));
    return false;
  }
  return warm_up_clblast(message);
}

// ---------------------------------------------------------------- Device

Device::Device(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Device::~Device() = default;

std::unique_ptr<Device> Device::open(const Selector& selector, std::string* error) {
  const std::vector<Found> found = enumerate_devices();
  if (found.empty()) {
    report(error,
           "no OpenCL device: no platform reports one (is an OpenCL driver installed? "
           "pocl-opencl-icd provides one on any CPU)");
    return nullptr;
  }
  std::vector<DeviceInfo> devices;
  for (const Found& f : found) devices.push_back(f.info);
  const int index = find_device(devices, selector, error);
  if (index < 0) return nullptr;
  const Found* chosen = &found[static_cast<std::size_t>(index)];
  auto impl = std::make_unique<Impl>();
  impl->info = chosen->info;
  impl->device = chosen->id;
  std::string why;
  if (!impl->create(&why)) {
    report(error, "opening OpenCL device " + chosen->info.name + ": " + why);
    return nullptr;
  }
  return std::unique_ptr<Device>(new Device(std::move(impl)));
}

const DeviceInfo& Device::info() const { return impl_->info; }
cl_context Device::context() const { return impl_->context; }
cl_command_queue Device::queue() const { return impl_->queue; }

Buffer Device::alloc(std::size_t bytes, std::string* error) {
  cl_int status = CL_SUCCESS;
  // OpenCL refuses empty buffers; an empty tensor still gets a valid, distinct one.
  const cl_mem buffer = clCreateBuffer(impl_->context, CL_MEM_READ_WRITE,
                                       std::max<std::size_t>(bytes, 1), nullptr, &status);
  if (status != CL_SUCCESS) {
    std::string why =
        "clCreateBuffer(" + std::to_string(bytes) + " bytes): " + detail::cl_error_name(status);
    if (status == CL_INVALID_BUFFER_SIZE) {
      why += "; the device allows at most " +
             std::to_string(device_value<cl_ulong>(impl_->device, CL_DEVICE_MAX_MEM_ALLOC_SIZE)) +
             " bytes per buffer";
    }
    report(error, std::move(why));
    return {};
  }
  return Buffer(buffer, bytes);
}

Buffer Device::alloc_pinned(std::size_t bytes, void** host, std::string* error) {
  cl_int status = CL_SUCCESS;
  cl_mem buffer = clCreateBuffer(impl_->context, CL_MEM_READ_WRITE | CL_MEM_ALLOC_HOST_PTR,
                                 std::max<std::size_t>(bytes, 1), nullptr, &status);
  if (status != CL_SUCCESS) {
    report(error, "clCreateBuffer(" + std::to_string(bytes) +
                      " bytes, CL_MEM_ALLOC_HOST_PTR): " + detail::cl_error_name(status));
    return {};
  }
  Buffer owned(buffer, bytes);
  // Mapped once, for good: write() and read() from this memory are the fast (DMA) transfers.
  // Blocks until the queue has run what is before it.
  *host = clEnqueueMapBuffer(impl_->queue, buffer, CL_TRUE, CL_MAP_READ | CL_MAP_WRITE, 0,
                             std::max<std::size_t>(bytes, 1), 0, nullptr, nullptr, &status);
  if (status != CL_SUCCESS) {
    report(error, "clEnqueueMapBuffer(" + std::to_string(bytes) +
                      " bytes): " + detail::cl_error_name(status));
    *host = nullptr;
    return {};
  }
  return owned;
}

void Device::write(Mem dst, const void* src, std::size_t bytes) {
  if (bytes == 0) return;
  impl_->check(clEnqueueWriteBuffer(impl_->queue, dst.buffer, CL_FALSE, dst.offset, bytes, src, 0,
                                    nullptr, nullptr),
               "Device::write", "clEnqueueWriteBuffer");
}

void Device::read(void* dst, Mem src, std::size_t bytes) {
  if (bytes == 0) return;
  impl_->check(clEnqueueReadBuffer(impl_->queue, src.buffer, CL_FALSE, src.offset, bytes, dst, 0,
                                   nullptr, nullptr),
               "Device::read", "clEnqueueReadBuffer");
}

void Device::copy(Mem dst, Mem src, std::size_t bytes) {
  if (bytes == 0 || (dst.buffer == src.buffer && dst.offset == src.offset)) return;
  impl_->check(clEnqueueCopyBuffer(impl_->queue, src.buffer, dst.buffer, src.offset, dst.offset,
                                   bytes, 0, nullptr, nullptr),
               "Device::copy", "clEnqueueCopyBuffer");
}

void Device::fill(Mem dst, const void* value, std::size_t element_bytes, int64_t elements) {
  if (elements <= 0) return;
  if (element_bytes != 1 && element_bytes != 4 && element_bytes != 8) {
    impl_->fail("Device::fill: elements of " + std::to_string(element_bytes) +
                " bytes (1, 4 or 8 are supported)");
    return;
  }
  if (!impl_->element_offset(dst, element_bytes, "Device::fill")) return;
  // The pattern is copied when the fill is enqueued.
  impl_->check(
      clEnqueueFillBuffer(impl_->queue, dst.buffer, value, element_bytes, dst.offset,
                          static_cast<std::size_t>(elements) * element_bytes, 0, nullptr, nullptr),
      "Device::fill", "clEnqueueFillBuffer");
}

Event::~Event() {
  if (event_ != nullptr) clReleaseEvent(event_);
}

Event::Event(Event&& other) noexcept : event_(std::exchange(other.event_, nullptr)) {}

Event& Event::operator=(Event&& other) noexcept {
  if (this != &other) {
    if (event_ != nullptr) clReleaseEvent(event_);
    event_ = std::exchange(other.event_, nullptr);
  }
  return *this;
}

Event Device::upload(Mem dst, const void* src, std::size_t bytes) {
  cl_event event = nullptr;
  if (bytes == 0) return Event();
  impl_->check(clEnqueueWriteBuffer(impl_->transfer, dst.buffer, CL_FALSE, dst.offset, bytes, src,
                                    0, nullptr, &event),
               "Device::upload", "clEnqueueWriteBuffer");
  return Event(event);
}

void Device::compute_after(const Event& e) {
  if (e.get() == nullptr) return;
  const cl_event wait = e.get();
  impl_->check(clEnqueueBarrierWithWaitList(impl_->queue, 1, &wait, nullptr),
               "Device::compute_after", "clEnqueueBarrierWithWaitList");
}

Event Device::compute_marker() {
  cl_event event = nullptr;
  impl_->check(clEnqueueMarkerWithWaitList(impl_->queue, 0, nullptr, &event),
               "Device::compute_marker", "clEnqueueMarkerWithWaitList");
  return Event(event);
}

void Device::download_after(void* dst, Mem src, std::size_t bytes, const Event& after) {
  if (bytes == 0) return;
  const cl_event wait = after.get();
  impl_->check(clEnqueueReadBuffer(impl_->transfer, src.buffer, CL_FALSE, src.offset, bytes, dst,
                                   wait != nullptr ? 1 : 0, wait != nullptr ? &wait : nullptr,
                                   nullptr),
               "Device::download_after", "clEnqueueReadBuffer");
}

Failure Device::finish() {
  Impl& d = *impl_;
  d.check(clFinish(d.queue), "Device::finish", "clFinish");
  d.check(clFinish(d.transfer), "Device::finish", "clFinish (transfers)");
  Failure bad;
  if (d.gather_pending) {
    d.gather_pending = false;
    cl_int record[COPROC_GATHER_RECORD_INTS] = {};
    if (d.check(clEnqueueReadBuffer(d.queue, d.gather_record, CL_TRUE, 0, sizeof record, record, 0,
                                    nullptr, nullptr),
                "Device::finish", "clEnqueueReadBuffer(gather record)") &&
        record[COPROC_GATHER_CLAIMED] != 0) {
      const auto join = [&](int lo, int hi) {
        return static_cast<int64_t>(static_cast<uint64_t>(static_cast<uint32_t>(record[hi])) << 32 |
                                    static_cast<uint32_t>(record[lo]));
      };
      const int64_t value = join(COPROC_GATHER_VALUE_LO, COPROC_GATHER_VALUE_HI);
      const std::string dim = std::to_string(join(COPROC_GATHER_DIM_LO, COPROC_GATHER_DIM_HI));
      bad.failed = true;
      bad.bad_index = true;
      bad.tag = record[COPROC_GATHER_TAG];
      bad.message =
          "index " + std::to_string(value) + " is out of range [-" + dim + ", " + dim + ")";
      const cl_int zeros[COPROC_GATHER_RECORD_INTS] = {};
      d.check(clEnqueueWriteBuffer(d.queue, d.gather_record, CL_TRUE, 0, sizeof zeros, zeros, 0,
                                   nullptr, nullptr),
              "Device::finish", "clEnqueueWriteBuffer(gather record)");
    }
  }
  // A failure of the device outranks bad data: the outputs are lost either way, and it is the
  // one an operator must see.
  if (!d.error.empty()) {
    Failure failure;
    failure.failed = true;
    failure.message = std::exchange(d.error, std::string());
    return failure;
  }
  return bad;
}

}  // namespace coproc::kernels::opencl
