// The TOML path of coprocd's config: parse_config_text() and describe().
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace coproc::daemon {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr std::string_view kSource = "/etc/coproc/coprocd.toml";
constexpr std::string_view kBaseDir = "/etc/coproc";

Result<Config> parse(std::string_view toml) { return parse_config_text(toml, kSource, kBaseDir); }

// The message of a parse that must fail with kInvalidArgument.
std::string error_of(std::string_view toml) {
  const Result<Config> config = parse(toml);
  if (config.ok()) {
    ADD_FAILURE() << "expected an error for:\n" << toml;
    return {};
  }
  EXPECT_EQ(config.error().code, ErrorCode::kInvalidArgument);
  return config.error().message;
}

// Sets (or, with nullopt, unsets) an environment variable for one test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      setenv(name, value->c_str(), 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(ConfigFile, shouldUseDefaultsWhenDocumentIsEmpty) {
  const Result<Config> config = parse("");

  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->socket_path, default_socket_path());
  EXPECT_TRUE(config->numa_auto);
  EXPECT_EQ(config->numa_node, -1);
  EXPECT_EQ(config->log_level, LogLevel::kInfo);
  EXPECT_EQ(config->poller_spin_us, 50u);
  EXPECT_EQ(config->inline_max_us, 200u);
  EXPECT_EQ(config->cpu_threads, 1u);
  EXPECT_EQ(config->max_clients, 64u);
  EXPECT_EQ(config->max_pending_hellos, 64u);
  EXPECT_EQ(config->max_pending_hellos_per_uid, 8u);
  EXPECT_EQ(config->arena_bytes, uint64_t{64} << 20);
  EXPECT_EQ(config->ring_slots, 256u);
  EXPECT_EQ(config->slot_bytes, 1024u);
  EXPECT_TRUE(config->allowed_uids.empty());
  EXPECT_TRUE(config->allowed_gids.empty());
  EXPECT_EQ(config->socket_mode, 0660u);
  EXPECT_EQ(config->socket_group, "");
  EXPECT_TRUE(config->models.empty());
}

TEST(ConfigFile, shouldDefaultSocketIntoXdgRuntimeDirWhenSet) {
  const ScopedEnv env("XDG_RUNTIME_DIR", "/run/user/1000");

  const Result<Config> config = parse("");

  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->socket_path, "/run/user/1000/coproc/coprocd.sock");
}

TEST(ConfigFile, shouldDefaultSocketIntoTmpPerUserWhenXdgRuntimeDirUnset) {
  const ScopedEnv env("XDG_RUNTIME_DIR", std::nullopt);

  const Result<Config> config = parse("");

  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->socket_path, "/tmp/coproc-" + std::to_string(getuid()) + "/coprocd.sock");
}

TEST(ConfigFile, shouldRefuseDefaultSocketWhenXdgRuntimeDirMakesItTooLong) {
  const ScopedEnv env("XDG_RUNTIME_DIR", "/" + std::string(120, 'x'));

  const std::string message = error_of("");

  EXPECT_THAT(message, StartsWith("config: daemon.socket (default) = \"/xxx"));
  EXPECT_THAT(message, HasSubstr("is 141 bytes; at most 107 fit in sun_path"));
}

TEST(ConfigFile, shouldParseEveryKey) {
  const Result<Config> config = parse(R"(
    [daemon]
    socket = "/run/coproc.sock"
    numa_node = 3
    log_level = "debug"
    [poller]
    spin_us = 0
    [executor]
    inline_max_us = 10000000
    cpu_threads = 256
    [limits]
    max_clients = 4096
    max_pending_hellos = 4096
    max_pending_hellos_per_uid = 4095
    arena_bytes = 17179869184
    ring_slots = 65536
    slot_bytes = 65536
    [security]
    allowed_uids = [1000, 4294967294]
    allowed_gids = [0, 998]
    socket_mode = 0o640
    socket_group = "coproc"
    [[model]]
    name = "mlp"
    path = "/models/mlp.onnx"
  )");

  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->socket_path, "/run/coproc.sock");
  EXPECT_FALSE(config->numa_auto);
  EXPECT_EQ(config->numa_node, 3);
  EXPECT_EQ(config->log_level, LogLevel::kDebug);
  EXPECT_EQ(config->poller_spin_us, 0u);
  EXPECT_EQ(config->inline_max_us, 10'000'000u);
  EXPECT_EQ(config->cpu_threads, 256u);
  EXPECT_EQ(config->max_clients, 4096u);
  EXPECT_EQ(config->max_pending_hellos, 4096u);
  EXPECT_EQ(config->max_pending_hellos_per_uid, 4095u);
  EXPECT_EQ(config->arena_bytes, uint64_t{17179869184});
  EXPECT_EQ(config->ring_slots, 65536u);
  EXPECT_EQ(config->slot_bytes, 65536u);
  EXPECT_EQ(config->allowed_uids, (std::vector<uint32_t>{1000, 4294967294u}));
  EXPECT_EQ(config->allowed_gids, (std::vector<uint32_t>{0, 998}));
  EXPECT_EQ(config->socket_mode, 0640u);
  EXPECT_EQ(config->socket_group, "coproc");
  ASSERT_EQ(config->models.size(), 1u);
  EXPECT_EQ(config->models[0].name, "mlp");
  EXPECT_EQ(config->models[0].path, "/models/mlp.onnx");
}

TEST(ConfigFile, shouldAcceptSmallestValueOfEveryBoundedKey) {
  const Result<Config> config = parse(R"(
    daemon.numa_node = 0
    executor = { inline_max_us = 0, cpu_threads = 1 }
    limits = { max_clients = 1, arena_bytes = 65536, ring_slots = 8, slot_bytes = 256 }
  )");

  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->numa_node, 0);
  EXPECT_EQ(config->inline_max_us, 0u);
  EXPECT_EQ(config->max_clients, 1u);
  EXPECT_EQ(config->arena_bytes, 65536u);
  EXPECT_EQ(config->ring_slots, 8u);
  EXPECT_EQ(config->slot_bytes, 256u);
}

TEST(ConfigFile, shouldSetNumaAutoWhenNumaNodeIsAuto) {
  const Result<Config> config = parse("[daemon]\nnuma_node = \"auto\"\n");

  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_TRUE(config->numa_auto);
  EXPECT_EQ(config->numa_node, -1);
}

// One refused value and the whole message it must produce.
struct Refusal {
  std::string test_name;
  std::string toml;
  std::string message;
};

// Shown by gtest in place of a byte dump of the parameter.
void PrintTo(const Refusal& refusal, std::ostream* os) { *os << refusal.test_name; }

std::string refusal_name(const ::testing::TestParamInfo<Refusal>& info) {
  return info.param.test_name;
}

class ConfigFileRefusal : public ::testing::TestWithParam<Refusal> {};

TEST_P(ConfigFileRefusal, shouldNameKeyValueAndAllowedRange) {
  const std::string message = error_of(GetParam().toml);

  EXPECT_EQ(message, GetParam().message);
}

const std::string kLongSocket = "/" + std::string(107, 's');

INSTANTIATE_TEST_SUITE_P(
    OutOfRange, ConfigFileRefusal,
    ::testing::Values(
        Refusal{"shouldRefuseSocketLongerThanSunPath", "daemon.socket = \"" + kLongSocket + "\"",
                "config: daemon.socket = \"" + kLongSocket +
                    "\" is 108 bytes; at most 107 fit in sun_path"},
        Refusal{"shouldRefuseEmptySocket", "daemon.socket = \"\"",
                "config: daemon.socket = \"\" must not be empty"},
        Refusal{"shouldRefuseNumaNodeAboveMax", "daemon.numa_node = 1024",
                "config: daemon.numa_node = 1024 must be an integer in [0, 1023] or \"auto\""},
        Refusal{"shouldRefuseNegativeNumaNode", "daemon.numa_node = -1",
                "config: daemon.numa_node = -1 must be an integer in [0, 1023] or \"auto\""},
        Refusal{"shouldRefuseUnknownLogLevel", "daemon.log_level = \"verbose\"",
                "config: daemon.log_level = \"verbose\" must be one of "
                "trace|debug|info|warn|error|off"},
        Refusal{"shouldRefuseNegativeSpinUs", "poller.spin_us = -5",
                "config: poller.spin_us = -5 is out of range [0, 1000000]"},
        Refusal{"shouldRefuseSpinUsAboveMax", "poller.spin_us = 1000001",
                "config: poller.spin_us = 1000001 is out of range [0, 1000000]"},
        Refusal{"shouldRefuseInlineMaxUsAboveMax", "executor.inline_max_us = 10000001",
                "config: executor.inline_max_us = 10000001 is out of range [0, 10000000]"},
        Refusal{"shouldRefuseZeroCpuThreads", "executor.cpu_threads = 0",
                "config: executor.cpu_threads = 0 is out of range [1, 256]"},
        Refusal{"shouldRefuseTooManyIntraOpThreads", "executor.intra_op_threads = 65",
                "config: executor.intra_op_threads = 65 is out of range [1, 64]"},
        Refusal{"shouldRefuseCpuThreadsAboveMax", "executor.cpu_threads = 257",
                "config: executor.cpu_threads = 257 is out of range [1, 256]"},
        Refusal{"shouldRefuseAHostNameForHttpListen", "http.listen = \"localhost:9470\"",
                "config: http.listen = \"localhost:9470\" needs a numeric address: an IPv4 address "
                "(127.0.0.1:9470) or an IPv6 one in brackets ([::1]:9470); it must be \"off\" or "
                "a numeric ADDRESS:PORT such as \"127.0.0.1:9470\" or \"[::1]:9470\""},
        Refusal{"shouldRefuseAnHttpPortAbove65535", "http.listen = \"127.0.0.1:65536\"",
                "config: http.listen = \"127.0.0.1:65536\" has a port outside [0, 65535]; it must "
                "be \"off\" or a numeric ADDRESS:PORT such as \"127.0.0.1:9470\" or "
                "\"[::1]:9470\""},
        Refusal{"shouldRefuseHttpListenWithoutAPort", "http.listen = \"127.0.0.1\"",
                "config: http.listen = \"127.0.0.1\" has no :PORT; it must be \"off\" or a "
                "numeric ADDRESS:PORT such as \"127.0.0.1:9470\" or \"[::1]:9470\""},
        Refusal{"shouldRefuseAnUnbracketedIpv6HttpListen", "http.listen = \"::1:9470\"",
                "config: http.listen = \"::1:9470\" needs a numeric address: an IPv4 address "
                "(127.0.0.1:9470) or an IPv6 one in brackets ([::1]:9470); it must be \"off\" or "
                "a numeric ADDRESS:PORT such as \"127.0.0.1:9470\" or \"[::1]:9470\""},
        Refusal{"shouldRefuseZeroMaxClients", "limits.max_clients = 0",
                "config: limits.max_clients = 0 is out of range [1, 4096]"},
        Refusal{"shouldRefuseMaxClientsAboveMax", "limits.max_clients = 4097",
                "config: limits.max_clients = 4097 is out of range [1, 4096]"},
        Refusal{"shouldRefuseMaxRequestRowsAboveMax", "limits.max_request_rows = 2147483649",
                "config: limits.max_request_rows = 2147483649 is out of range [1, 2147483648]"},
        Refusal{"shouldRefuseMaxPendingHellosBelowTwo", "limits.max_pending_hellos = 1",
                "config: limits.max_pending_hellos = 1 is out of range [2, 4096]"},
        Refusal{"shouldRefuseZeroMaxPendingHellosPerUid", "limits.max_pending_hellos_per_uid = 0",
                "config: limits.max_pending_hellos_per_uid = 0 is out of range [1, 4095]"},
        Refusal{"shouldRefuseMaxPendingHellosPerUidNotBelowTheTotal",
                "limits = { max_pending_hellos = 8, max_pending_hellos_per_uid = 8 }",
                "config: limits.max_pending_hellos_per_uid = 8 must be below "
                "limits.max_pending_hellos = 8: else one user's idle connections can take every "
                "place"},
        Refusal{"shouldRefuseArenaBelowMin", "limits.arena_bytes = 65535",
                "config: limits.arena_bytes = 65535 is out of range [65536, 17179869184]"},
        Refusal{"shouldRefuseArenaSizeStringAboveMax", "limits.arena_bytes = \"32GiB\"",
                "config: limits.arena_bytes = \"32GiB\" is out of range [65536, 17179869184]"},
        Refusal{"shouldRefuseArenaSizeStringThatOverflows",
                "limits.arena_bytes = \"99999999999999999999GiB\"",
                "config: limits.arena_bytes = \"99999999999999999999GiB\" is out of range "
                "[65536, 17179869184]"},
        Refusal{"shouldRefuseRingSlotsNotPowerOfTwo", "limits.ring_slots = 100",
                "config: limits.ring_slots = 100 must be a power of two in [8, 65536]"},
        Refusal{"shouldRefuseRingSlotsBelowMin", "limits.ring_slots = 4",
                "config: limits.ring_slots = 4 must be a power of two in [8, 65536]"},
        Refusal{"shouldRefuseRingSlotsAboveMax", "limits.ring_slots = 131072",
                "config: limits.ring_slots = 131072 must be a power of two in [8, 65536]"},
        Refusal{"shouldRefuseSlotBytesNotMultipleOf64", "limits.slot_bytes = 1000",
                "config: limits.slot_bytes = 1000 must be a multiple of 64 in [256, 65536]"},
        Refusal{"shouldRefuseSlotBytesBelowMin", "limits.slot_bytes = 192",
                "config: limits.slot_bytes = 192 must be a multiple of 64 in [256, 65536]"},
        Refusal{"shouldRefuseSlotBytesAboveMax", "limits.slot_bytes = 65600",
                "config: limits.slot_bytes = 65600 must be a multiple of 64 in [256, 65536]"}),
    refusal_name);

INSTANTIATE_TEST_SUITE_P(
    WrongType, ConfigFileRefusal,
    ::testing::Values(
        Refusal{"shouldRefuseSocketThatIsNotString", "daemon.socket = 5",
                "config: daemon.socket = 5 must be a string"},
        Refusal{"shouldRefuseFractionalNumaNode", "daemon.numa_node = 1.5",
                "config: daemon.numa_node = 1.5 must be an integer in [0, 1023] or \"auto\""},
        Refusal{"shouldRefuseLogLevelThatIsNotString", "daemon.log_level = 3",
                "config: daemon.log_level = 3 must be one of trace|debug|info|warn|error|off"},
        Refusal{"shouldRefuseQuotedIntegerForSpinUs", "poller.spin_us = \"50\"",
                "config: poller.spin_us = \"50\" must be an integer in [0, 1000000]"},
        Refusal{"shouldRefuseFloatForInlineMaxUs", "executor.inline_max_us = 2.5",
                "config: executor.inline_max_us = 2.5 must be an integer in [0, 10000000]"},
        Refusal{"shouldRefuseBooleanForCpuThreads", "executor.cpu_threads = true",
                "config: executor.cpu_threads = true must be an integer in [1, 256]"},
        Refusal{"shouldRefuseArrayForMaxClients", "limits.max_clients = [1, 2]",
                "config: limits.max_clients = [ 1, 2 ] must be an integer in [1, 4096]"},
        Refusal{"shouldRefuseArenaWithDecimalUnit", "limits.arena_bytes = \"64MB\"",
                "config: limits.arena_bytes = \"64MB\" must be a byte count or a size such as "
                "\"64MiB\" in [65536, 17179869184]"},
        Refusal{"shouldRefuseStringForRingSlots", "limits.ring_slots = \"many\"",
                "config: limits.ring_slots = \"many\" must be a power of two in [8, 65536]"},
        Refusal{"shouldRefuseFloatForSlotBytes", "limits.slot_bytes = 1024.0",
                "config: limits.slot_bytes = 1024.0 must be a multiple of 64 in [256, 65536]"},
        Refusal{"shouldRefuseSectionThatIsNotTable", "poller = 5",
                "config: poller = 5 must be a table"},
        Refusal{"shouldRefuseModelThatIsNotArrayOfTables", "model = \"mlp\"",
                "config: model = \"mlp\" must be an array of tables ([[model]])"},
        Refusal{"shouldRefuseModelPathThatIsNotString", "[[model]]\nname = \"mlp\"\npath = 7",
                "config: model[0].path = 7 must be a string"}),
    refusal_name);

const std::string kIdListRule = "must be an array of at most 1024 integers in [0, 4294967294]";
const std::string kModeRule = "must be an octal mode in [0, 0777], written 0o660 or \"0660\"";
const std::string kGroupRule =
    "must be a group name (1-32 characters of [A-Za-z0-9_.-], not starting with '-') or a gid in "
    "[0, 4294967294]";

std::string ids(int n) {
  std::string list = "[";
  for (int i = 0; i < n; ++i) list += (i ? ", " : "") + std::to_string(i);
  return list + "]";
}

INSTANTIATE_TEST_SUITE_P(
    Security, ConfigFileRefusal,
    ::testing::Values(
        Refusal{"shouldRefuseNegativeUid", "security.allowed_uids = [1000, -1]",
                "config: security.allowed_uids = [ 1000, -1 ] " + kIdListRule},
        Refusal{"shouldRefuseUidThatIsNotAnId", "security.allowed_uids = [4294967295]",
                "config: security.allowed_uids = [ 4294967295 ] " + kIdListRule},
        Refusal{"shouldRefuseSingleUidNotInArray", "security.allowed_uids = 1000",
                "config: security.allowed_uids = 1000 " + kIdListRule},
        Refusal{"shouldRefuseUserNameForUid", "security.allowed_uids = [\"alice\"]",
                "config: security.allowed_uids = [ 'alice' ] " + kIdListRule},
        Refusal{"shouldRefuseFractionalGid", "security.allowed_gids = [1.5]",
                "config: security.allowed_gids = [ 1.5 ] " + kIdListRule},
        Refusal{"shouldRefuseAllowListLongerThan1024", "security.allowed_gids = " + ids(1025),
                "config: security.allowed_gids has 1025 entries; at most 1024 are allowed"},
        Refusal{"shouldRefuseDecimalSocketMode", "security.socket_mode = 660",
                "config: security.socket_mode = 660 " + kModeRule},
        Refusal{"shouldRefuseSocketModeWithNonOctalDigit", "security.socket_mode = \"0690\"",
                "config: security.socket_mode = \"0690\" " + kModeRule},
        Refusal{"shouldRefuseSocketModeWithStickyBit", "security.socket_mode = 0o1777",
                "config: security.socket_mode = 0o1777 " + kModeRule},
        Refusal{"shouldRefuseSocketModeStringAboveMax", "security.socket_mode = \"4755\"",
                "config: security.socket_mode = \"4755\" " + kModeRule},
        Refusal{"shouldRefuseEmptySocketMode", "security.socket_mode = \"\"",
                "config: security.socket_mode = \"\" " + kModeRule},
        Refusal{"shouldRefuseBooleanSocketMode", "security.socket_mode = true",
                "config: security.socket_mode = true " + kModeRule},
        Refusal{"shouldRefuseGroupNameWithSpace", "security.socket_group = \"my group\"",
                "config: security.socket_group = \"my group\" " + kGroupRule},
        Refusal{"shouldRefuseGroupNameStartingWithDash", "security.socket_group = \"-g\"",
                "config: security.socket_group = \"-g\" " + kGroupRule},
        Refusal{"shouldRefuseGroupName33Chars",
                "security.socket_group = \"" + std::string(33, 'g') + "\"",
                "config: security.socket_group = \"" + std::string(33, 'g') + "\" " + kGroupRule},
        Refusal{"shouldRefuseNegativeGid", "security.socket_group = -1",
                "config: security.socket_group = -1 " + kGroupRule},
        Refusal{"shouldRefuseGidThatIsNotAnId", "security.socket_group = \"4294967295\"",
                "config: security.socket_group = \"4294967295\" " + kGroupRule},
        Refusal{"shouldRefuseUnknownSecurityKey", "[security]\nallowed_users = [1]",
                "config: unknown key 'security.allowed_users' in /etc/coproc/coprocd.toml:2"}),
    refusal_name);

INSTANTIATE_TEST_SUITE_P(
    UnknownName, ConfigFileRefusal,
    ::testing::Values(Refusal{"shouldRefuseUnknownKeyInKnownTable", "[poller]\nspinn = 5",
                              "config: unknown key 'poller.spinn' in /etc/coproc/coprocd.toml:2"},
                      Refusal{"shouldRefuseUnknownDottedKey", "\n\nlimits.arena = 5",
                              "config: unknown key 'limits.arena' in /etc/coproc/coprocd.toml:3"},
                      Refusal{"shouldRefuseUnknownTable", "[pollr]\nspin_us = 5",
                              "config: unknown table 'pollr' in /etc/coproc/coprocd.toml:1"},
                      Refusal{"shouldRefuseUnknownTopLevelKey", "verbose = true",
                              "config: unknown key 'verbose' in /etc/coproc/coprocd.toml:1"},
                      Refusal{"shouldRefuseNestedTableInKnownTable", "[poller.extra]\nx = 1",
                              "config: unknown key 'poller.extra' in /etc/coproc/coprocd.toml:1"},
                      Refusal{"shouldRefuseUnknownKeyInModel",
                              "[[model]]\nname = \"mlp\"\npth = \"/m.onnx\"",
                              "config: unknown key 'model[0].pth' in /etc/coproc/coprocd.toml:3"}),
    refusal_name);

INSTANTIATE_TEST_SUITE_P(
    BadModel, ConfigFileRefusal,
    ::testing::Values(
        Refusal{"shouldRefuseModelDefinedTwice",
                "[[model]]\nname = \"mlp\"\npath = \"/a.onnx\"\n"
                "[[model]]\nname = \"mlp\"\npath = \"/b.onnx\"",
                "config: model 'mlp' is defined twice"},
        Refusal{"shouldRefuseModelNameWithSpace", "[[model]]\nname = \"my model\"\npath = \"/m\"",
                "config: model[0].name = \"my model\" must be 1-63 characters of [A-Za-z0-9_.-]"},
        Refusal{"shouldRefuseModelNameWithSlash", "[[model]]\nname = \"a/b\"\npath = \"/m\"",
                "config: model[0].name = \"a/b\" must be 1-63 characters of [A-Za-z0-9_.-]"},
        Refusal{"shouldRefuseEmptyModelName", "[[model]]\nname = \"\"\npath = \"/m\"",
                "config: model[0].name = \"\" must be 1-63 characters of [A-Za-z0-9_.-]"},
        Refusal{"shouldRefuseModelName64Chars",
                "[[model]]\nname = \"" + std::string(64, 'm') + "\"\npath = \"/m\"",
                "config: model[0].name = \"" + std::string(64, 'm') +
                    "\" must be 1-63 characters of [A-Za-z0-9_.-]"},
        Refusal{"shouldRefuseModelWithoutName", "[[model]]\npath = \"/m\"",
                "config: model[0] has no name"},
        Refusal{"shouldRefuseModelWithoutPath", "[[model]]\nname = \"mlp\"",
                "config: model[0] 'mlp' has no path"},
        Refusal{"shouldRefuseModelWithEmptyPath", "[[model]]\nname = \"mlp\"\npath = \"\"",
                "config: model[0] 'mlp' has no path"}),
    refusal_name);

TEST(ConfigFile, shouldAcceptModelNameOf63AllowedChars) {
  const std::string name = "Az09_.-" + std::string(56, 'x');

  const Result<Config> config = parse("[[model]]\nname = \"" + name + "\"\npath = \"/m.onnx\"");

  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->models.at(0).name, name);
}

TEST(ConfigFile, shouldKeepModelsInFileOrder) {
  const Result<Config> config = parse(R"(
    [[model]]
    name = "b"
    path = "/b.onnx"
    [[model]]
    name = "a"
    path = "/a.onnx"
  )");

  ASSERT_TRUE(config.ok()) << config.error().message;
  ASSERT_EQ(config->models.size(), 2u);
  EXPECT_EQ(config->models[0].name, "b");
  EXPECT_EQ(config->models[1].name, "a");
}

struct SizeCase {
  std::string test_name;
  std::string value;  // as written after "arena_bytes = "
  uint64_t bytes;
};

void PrintTo(const SizeCase& size, std::ostream* os) { *os << size.test_name; }

class ConfigFileArenaSize : public ::testing::TestWithParam<SizeCase> {};

TEST_P(ConfigFileArenaSize, shouldReadSizeWithUnit) {
  const Result<Config> config = parse("limits.arena_bytes = " + GetParam().value);

  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->arena_bytes, GetParam().bytes);
}

INSTANTIATE_TEST_SUITE_P(
    Units, ConfigFileArenaSize,
    ::testing::Values(SizeCase{"Kibibytes", "\"512KiB\"", 512 * 1024},
                      SizeCase{"Mebibytes", "\"64MiB\"", uint64_t{64} << 20},
                      SizeCase{"Gibibytes", "\"1GiB\"", uint64_t{1} << 30},
                      SizeCase{"MaxGibibytes", "\"16GiB\"", uint64_t{16} << 30},
                      SizeCase{"SpaceBeforeUnit", "\"64 MiB\"", uint64_t{64} << 20},
                      SizeCase{"Bytes", "\"65536B\"", 65536},
                      SizeCase{"BareNumberString", "\"65536\"", 65536},
                      SizeCase{"Integer", "1048576", 1048576}),
    [](const ::testing::TestParamInfo<SizeCase>& param) { return param.param.test_name; });

struct ModeCase {
  std::string test_name;
  std::string value;  // as written after "socket_mode = "
  uint32_t mode;
};

void PrintTo(const ModeCase& mode, std::ostream* os) { *os << mode.test_name; }

class ConfigFileSocketMode : public ::testing::TestWithParam<ModeCase> {};

TEST_P(ConfigFileSocketMode, shouldReadModeInOctal) {
  const Result<Config> config = parse("security.socket_mode = " + GetParam().value);

  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->socket_mode, GetParam().mode);
}

INSTANTIATE_TEST_SUITE_P(Octal, ConfigFileSocketMode,
                         ::testing::Values(ModeCase{"TomlOctalInteger", "0o600", 0600},
                                           ModeCase{"StringWithLeadingZero", "\"0660\"", 0660},
                                           ModeCase{"StringWithoutLeadingZero", "\"666\"", 0666},
                                           ModeCase{"StringWithTomlPrefix", "\"0o640\"", 0640},
                                           ModeCase{"Zero", "\"0\"", 0},
                                           ModeCase{"Max", "0o777", 0777}),
                         [](const ::testing::TestParamInfo<ModeCase>& param) {
                           return param.param.test_name;
                         });

TEST(ConfigFile, shouldTakeSocketGroupAsGidWhenAllDigits) {
  const Result<Config> as_integer = parse("security.socket_group = 998");
  const Result<Config> as_string = parse("security.socket_group = \"0998\"");

  ASSERT_TRUE(as_integer.ok()) << as_integer.error().message;
  ASSERT_TRUE(as_string.ok()) << as_string.error().message;
  EXPECT_EQ(as_integer->socket_group, "998");
  EXPECT_EQ(as_string->socket_group, "998");
}

TEST(ConfigFile, shouldAcceptEmptyAllowListsAndEmptySocketGroupAsDefaults) {
  const Result<Config> config = parse(R"(
    [security]
    allowed_uids = []
    allowed_gids = []
    socket_group = ""
  )");

  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_TRUE(config->allowed_uids.empty());
  EXPECT_TRUE(config->allowed_gids.empty());
  EXPECT_EQ(config->socket_group, "");
}

TEST(ConfigFile, shouldReportLineAndColumnOfSyntaxError) {
  const std::string message = error_of("[poller]\n\nspin_us = = 5\n");

  EXPECT_THAT(message, StartsWith("config: /etc/coproc/coprocd.toml:3:"));
}

TEST(ConfigFile, shouldRefuseKeyDefinedTwiceAsSyntaxError) {
  const std::string message = error_of("[poller]\nspin_us = 1\nspin_us = 2\n");

  EXPECT_THAT(message, StartsWith("config: /etc/coproc/coprocd.toml:3:"));
}

TEST(ConfigFile, shouldResolveRelativeModelPathAgainstBaseDir) {
  const Result<Config> config = parse(R"(
    [[model]]
    name = "here"
    path = "models/mlp.onnx"
    [[model]]
    name = "up"
    path = "../shared/noop.onnx"
    [[model]]
    name = "absolute"
    path = "/var/lib/coproc/m.onnx"
  )");

  ASSERT_TRUE(config.ok()) << config.error().message;
  ASSERT_EQ(config->models.size(), 3u);
  EXPECT_EQ(config->models[0].path, "/etc/coproc/models/mlp.onnx");
  EXPECT_EQ(config->models[1].path, "/etc/shared/noop.onnx");
  EXPECT_EQ(config->models[2].path, "/var/lib/coproc/m.onnx");
}

TEST(ConfigFile, shouldLeaveRelativeModelPathWhenNoBaseDir) {
  const Result<Config> config =
      parse_config_text("[[model]]\nname = \"m\"\npath = \"m.onnx\"", "inline", "");

  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->models.at(0).path, "m.onnx");
}

TEST(ConfigFile, shouldDescribeEveryKeyAndModelOnItsOwnLine) {
  const Result<Config> config = parse(R"(
    daemon.socket = "/run/c.sock"
    daemon.numa_node = 2
    [[model]]
    name = "mlp"
    path = "/m/mlp.onnx"
  )");
  ASSERT_TRUE(config.ok()) << config.error().message;

  const std::string text = describe(config.value());

  EXPECT_EQ(
      text,
      "daemon.socket = \"/run/c.sock\"\n"
      "daemon.numa_node = 2\n"
      "daemon.log_level = \"info\"\n"
      "poller.spin_us = 50\n"
      "executor.inline_max_us = 200\n"
      "executor.cpu_threads = 1\n"
      "executor.intra_op_threads = 1\n"
      "opencl.platform = \"\"\n"
      "opencl.device = \"\"\n"
      "http.listen = \"127.0.0.1:9470\"\n"
      "limits.max_clients = 64\n"
      "limits.max_pending_hellos = 64\n"
      "limits.max_pending_hellos_per_uid = 8\n"
      "limits.arena_bytes = 67108864\n"
      "limits.request_memory = 4294967296\n"
      "limits.max_request_rows = 65536\n"
      "limits.ring_slots = 256\n"
      "limits.slot_bytes = 1024\n"
      "security.allowed_uids = []\n"
      "security.allowed_gids = []\n"
      "security.socket_mode = \"0660\"\n"
      "security.socket_group = \"\"\n"
      "model.mlp = \"/m/mlp.onnx\" (device cpu, mode dynamic, max_batch 32, min_batch 1, "
      "max_wait_us "
      "1000, preferred [], target balanced, p99_goal_us 5000, queue_limit 1024, timeout_ms 0, "
      "aging_ms 10, length_buckets [], memory_limit 0)\n");
}

TEST(ConfigFile, shouldDefaultTheParsedHttpListenToItsText) {
  const Result<Config> config = parse("");
  ASSERT_TRUE(config.ok()) << config.error().message;
  bool valid = false;
  std::string problem;
  const auto parsed = parse_listen_address(config->http_listen, &valid, &problem);
  ASSERT_TRUE(valid && parsed && config->http) << problem;
  EXPECT_EQ(config->http->host, parsed->host);
  EXPECT_EQ(config->http->port, parsed->port);
}

TEST(ConfigFile, shouldAcceptHttpListenOffIpv4AndBracketedIpv6) {
  for (const char* value : {"off", "0.0.0.0:0", "127.0.0.1:9470", "[::1]:65535"}) {
    const Result<Config> config = parse(std::string("http.listen = \"") + value + "\"\n");
    ASSERT_TRUE(config.ok()) << value << ": " << config.error().message;
    EXPECT_EQ(config->http_listen, value);
    EXPECT_EQ(config->http.has_value(), std::string(value) != "off") << value;
  }
}

TEST(ConfigFile, shouldDescribeScalarKeysAsTomlThatParsesBack) {
  const Result<Config> first = parse(R"(
    daemon = { socket = "/run/c.sock", numa_node = 5, log_level = "warn" }
    limits = { arena_bytes = "1GiB", ring_slots = 1024 }
    http = { listen = "[::1]:9100" }
    security = { allowed_uids = [1000, 1001], allowed_gids = [998], socket_mode = 0o600, socket_group = "coproc" }
  )");
  ASSERT_TRUE(first.ok()) << first.error().message;

  const Result<Config> second = parse(describe(first.value()));

  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(describe(second.value()), describe(first.value()));
}

}  // namespace
}  // namespace coproc::daemon
