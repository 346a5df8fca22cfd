// Token pieces to text. A token's bytes may end inside a UTF-8 sequence (byte-level BPE splits
// characters wherever its merges say), so generated text is released only up to the last
// complete character, and the rest is held until the next piece completes it.
//
// Output is always valid UTF-8. Invalid input is replaced by U+FFFD the way the WHATWG decoder
// (and Python's errors="replace") does it: each maximal prefix of a sequence that cannot be
// completed becomes one U+FFFD, and decoding resumes at the byte that broke it. Overlong forms,
// surrogates and code points past U+10FFFF are invalid. A sequence still incomplete at flush()
// becomes one U+FFFD.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace coproc::llm {

class Utf8Stream {
 public:
  // Appends `bytes`; returns the text that is now complete (possibly empty).
  std::string push(std::string_view bytes);
  // At the end of the stream: U+FFFD for an incomplete sequence held back, else empty. The stream
  // is then empty and can be reused.
  std::string flush();

  // Bytes held back, waiting for the rest of their character (0..3).
  size_t pending_bytes() const { return pending_.size(); }

 private:
  std::string pending_;   // the bytes of an incomplete sequence
  uint32_t needed_ = 0;   // continuation bytes still to come
  uint8_t lower_ = 0x80;  // the next continuation byte's allowed range
  uint8_t upper_ = 0xBF;
};

}  // namespace coproc::llm
