#include "llm/unicode.h"

#include <algorithm>
#include <array>
#include <map>
#include <memory>

namespace coproc::llm {
namespace {

struct CodepointRange {
  uint32_t first;
  uint16_t flags;
};

#include "llm/unicode_tables.inc"

constexpr uint32_t kMaxCodepoint = 0x10FFFF;
constexpr uint32_t kBlockBits = 8;
constexpr uint32_t kBlockSize = 1u << kBlockBits;
constexpr uint32_t kBlockCount = (kMaxCodepoint + 1) >> kBlockBits;

// Two-stage lookup: block_of[cp >> 8] names one of the distinct 256-entry blocks. Most of the
// code space is runs of one class, so ~300 distinct blocks stand for 4,352.
struct FlagTable {
  std::array<uint16_t, kBlockCount> block_of{};
  std::vector<std::array<uint16_t, kBlockSize>> blocks;

  FlagTable() {
    std::vector<uint16_t> flat(kMaxCodepoint + 1);
    constexpr size_t kRanges = std::size(kCodepointRanges);
    for (size_t i = 0; i < kRanges; ++i) {
      const uint32_t end = i + 1 < kRanges ? kCodepointRanges[i + 1].first : kMaxCodepoint + 1;
      for (uint32_t cp = kCodepointRanges[i].first; cp < end; ++cp)
        flat[cp] = kCodepointRanges[i].flags;
    }
    std::map<std::array<uint16_t, kBlockSize>, uint16_t> index;
    for (uint32_t b = 0; b < kBlockCount; ++b) {
      std::array<uint16_t, kBlockSize> block;
      std::copy_n(flat.begin() + b * kBlockSize, kBlockSize, block.begin());
      auto [it, inserted] = index.emplace(block, static_cast<uint16_t>(blocks.size()));
      if (inserted) blocks.push_back(block);
      block_of[b] = it->second;
    }
  }
};

const FlagTable& flag_table() {
  static const FlagTable table;
  return table;
}

// The byte-level alphabet, both ways.
struct ByteAlphabet {
  std::array<uint32_t, 256> to_cp{};
  std::array<int16_t, 324> to_byte{};  // code points 0 .. 0x143

  ByteAlphabet() {
    to_byte.fill(-1);
    auto printable = [](int b) {
      return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    uint32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
      to_cp[b] = printable(b) ? static_cast<uint32_t>(b) : next++;
      to_byte[to_cp[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteAlphabet& byte_alphabet() {
  static const ByteAlphabet alphabet;
  return alphabet;
}

bool is_continuation(uint8_t byte) { return (byte & 0xC0) == 0x80; }

// One code point at text[pos], or false when llama.cpp would not decode one there.
bool decode_one(std::string_view text, size_t pos, uint32_t& cp, size_t& length) {
  const auto at = [&](size_t i) { return static_cast<uint8_t>(text[pos + i]); };
  const uint8_t lead = at(0);
  if (lead < 0x80) {
    cp = lead;
    length = 1;
    return true;
  }
  if ((lead & 0xE0) == 0xC0) {
    length = 2;
    cp = lead & 0x1Fu;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3;
    cp = lead & 0x0Fu;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4;
    cp = lead & 0x07u;
  } else {
    return false;  // a continuation byte, or F8..FF
  }
  if (pos + length > text.size()) return false;
  for (size_t i = 1; i < length; ++i) {
    if (!is_continuation(at(i))) return false;
    cp = (cp << 6) | (at(i) & 0x3Fu);
  }
  return cp <= kMaxCodepoint;
}

}  // namespace

uint16_t codepoint_flags(uint32_t cp) {
  if (cp > kMaxCodepoint) return CodepointFlags::kUndefined;
  const FlagTable& table = flag_table();
  return table.blocks[table.block_of[cp >> kBlockBits]][cp & (kBlockSize - 1)];
}

void decode_utf8_lenient(std::string_view text, std::vector<uint32_t>& out) {
  out.clear();
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    uint32_t cp = 0;
    size_t length = 0;
    if (decode_one(text, pos, cp, length)) {
      out.push_back(cp);
      pos += length;
    } else {
      out.push_back(kReplacementCharacter);
      pos += 1;
    }
  }
}

void append_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

uint32_t byte_to_codepoint(uint8_t byte) { return byte_alphabet().to_cp[byte]; }

int codepoint_to_byte(uint32_t cp) {
  const auto& to_byte = byte_alphabet().to_byte;
  return cp < to_byte.size() ? to_byte[cp] : -1;
}

bool decode_byte_level(std::string_view text, std::string& out) {
  out.clear();
  size_t pos = 0;
  while (pos < text.size()) {
    uint32_t cp = 0;
    size_t length = 0;
    if (!decode_one(text, pos, cp, length)) return false;
    const int byte = codepoint_to_byte(cp);
    if (byte < 0) return false;
    out.push_back(static_cast<char>(byte));
    pos += length;
  }
  return true;
}

}  // namespace coproc::llm
