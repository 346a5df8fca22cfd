// Finding and opening devices, memory, copies and fills, and how finish() reports a failed call.
#include <cctype>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "test_util.h"

namespace coproc::kernels::opencl::test {
namespace {

class DeviceTest : public OpenClTest {};

TEST_F(DeviceTest, shouldListTheOpenedDeviceWithItsProperties) {
  const std::vector<DeviceInfo> devices = list_devices();
  ASSERT_FALSE(devices.empty());
  const DeviceInfo& opened = device().info();
  bool listed = false;
  for (const DeviceInfo& d : devices) {
    EXPECT_FALSE(d.name.empty());
    EXPECT_FALSE(d.platform.empty());
    EXPECT_NE(d.version.find("OpenCL"), std::string::npos) << d.version;
    EXPECT_GT(d.global_memory_bytes, 0u);
    EXPECT_GT(d.compute_units, 0u);
    EXPECT_GE(d.numa_node, -1);
    listed = listed || (d.platform_index == opened.platform_index &&
                        d.device_index == opened.device_index && d.name == opened.name);
  }
  EXPECT_TRUE(listed) << opened.name << " is not among the listed devices";
}

TEST_F(DeviceTest, shouldRefuseASelectorThatMatchesNothingNamingWhatWasAsked) {
  std::string error;
  Selector by_name;
  by_name.device = "no-such-device-xyz";
  EXPECT_EQ(Device::open(by_name, &error), nullptr);
  EXPECT_NE(error.find("no-such-device-xyz"), std::string::npos) << error;
  EXPECT_NE(error.find(device().info().name), std::string::npos) << "lists the devices: " << error;

  Selector by_index;
  by_index.platform_index = 99;
  EXPECT_EQ(Device::open(by_index, &error), nullptr);
  EXPECT_NE(error.find("99"), std::string::npos) << error;
}

TEST_F(DeviceTest, shouldOpenByCaseInsensitiveSubstringsOfTheNames) {
  const DeviceInfo& info = device().info();
  std::string upper = info.name.substr(0, 6);
  for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  Selector selector;
  selector.device = upper;
  selector.platform = info.platform.substr(1, 4);
  selector.platform_index = info.platform_index;
  std::string error;
  const auto other = Device::open(selector, &error);
  ASSERT_NE(other, nullptr) << error;
  EXPECT_EQ(other->info().name, info.name);
  EXPECT_FALSE(other->finish().failed);
}

TEST_F(DeviceTest, shouldMoveBytesBetweenHostBuffersAndOffsets) {
  std::string error;
  Buffer empty = device().alloc(0, &error);
  EXPECT_NE(empty.get(), nullptr) << error;

  const Tensor source = upload(std::vector<int32_t>{1, 2, 3, 4, 5, 6, 7}, 2);
  Buffer target = device().alloc(64, &error);
  ASSERT_NE(target.get(), nullptr) << error;
  device().copy(target.at(12), source.buffer.at(source.mem.offset + 4), 5 * sizeof(int32_t));
  EXPECT_EQ(download<int32_t>(target.at(12), 5), (std::vector<int32_t>{2, 3, 4, 5, 6}));

  void* host = nullptr;
  Buffer pinned = device().alloc_pinned(7 * sizeof(int32_t), &host, &error);
  ASSERT_NE(pinned.get(), nullptr) << error;
  ASSERT_NE(host, nullptr);
  device().read(host, source.mem, 7 * sizeof(int32_t));
  EXPECT_FALSE(device().finish().failed);
  auto* staged = static_cast<int32_t*>(host);
  EXPECT_EQ(std::vector<int32_t>(staged, staged + 7), (std::vector<int32_t>{1, 2, 3, 4, 5, 6, 7}));
  staged[0] = 42;
  device().write(target.at(0), host, sizeof(int32_t));
  EXPECT_EQ(download<int32_t>(target.at(0), 1)[0], 42);

  const Buffer moved = std::move(target);
  EXPECT_EQ(moved.bytes(), 64u);
}

TEST_F(DeviceTest, shouldFillPatternsOfEverySizeAtAnOffset) {
  const Tensor t = upload(std::vector<uint8_t>(40, 0xee));
  const uint8_t byte = 0x11;
  const uint32_t word = 0x22334455;
  const uint64_t wide = 0x0102030405060708;
  device().fill(t.buffer.at(1), &byte, 1, 3);
  device().fill(t.buffer.at(8), &word, 4, 2);
  device().fill(t.buffer.at(24), &wide, 8, 1);
  const auto got = download<uint8_t>(t.mem, 40);
  std::vector<uint8_t> want(40, 0xee);
  std::memset(want.data() + 1, 0x11, 3);
  std::memcpy(want.data() + 8, &word, 4);
  std::memcpy(want.data() + 12, &word, 4);
  std::memcpy(want.data() + 24, &wide, 8);
  EXPECT_EQ(got, want);
}

TEST_F(DeviceTest, shouldReportTheFirstFailedCallOnceAtFinish) {
  const Tensor t = upload(std::vector<uint8_t>(16, 0));
  const uint32_t word = 1;
  device().fill(t.buffer.at(2), &word, 4, 2);  // misaligned for 4-byte elements
  device().fill(t.buffer.at(0), &word, 3, 2);  // no such element size
  const Failure failure = device().finish();
  EXPECT_TRUE(failure.failed);
  EXPECT_FALSE(failure.bad_index);
  EXPECT_NE(failure.message.find("Device::fill"), std::string::npos) << failure.message;
  EXPECT_NE(failure.message.find("offset 2"), std::string::npos)
      << "the first: " << failure.message;
  EXPECT_FALSE(device().finish().failed);
}

}  // namespace
}  // namespace coproc::kernels::opencl::test
