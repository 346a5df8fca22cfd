// Utf8Stream: complete characters out, incomplete ones held back, invalid bytes as U+FFFD.
#include "llm/detokenizer.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace coproc::llm {
namespace {

const std::string kFffd = "\xef\xbf\xbd";

std::string whole(std::string_view bytes) {
  Utf8Stream s;
  std::string out = s.push(bytes);  // before flush(): the operands of + are not sequenced
  return out + s.flush();
}

TEST(Utf8Stream, shouldHoldBackASplitCharacterUntilItsLastByte) {
  Utf8Stream s;
  EXPECT_EQ(s.push("caf\xc3"), "caf");
  EXPECT_EQ(s.pending_bytes(), 1u);
  EXPECT_EQ(s.push("\xa9!"), "\xc3\xa9!");
  EXPECT_EQ(s.flush(), "");
}

TEST(Utf8Stream, shouldReleaseAnEmojiFedOneByteAtATime) {
  const std::string emoji = "\xf0\x9f\x98\x80";
  Utf8Stream s;
  for (size_t i = 0; i + 1 < emoji.size(); ++i) EXPECT_EQ(s.push(emoji.substr(i, 1)), "");
  EXPECT_EQ(s.push(emoji.substr(3)), emoji);
}

TEST(Utf8Stream, shouldReplaceInvalidBytesAsPythonsReplaceDoes) {
  // Expected values: bytes.decode("utf-8", "replace") in Python, which follows the same rule.
  EXPECT_EQ(whole("a\xff"
                  "b"),
            "a" + kFffd + "b");
  EXPECT_EQ(whole("\x80\x80"), kFffd + kFffd);
  EXPECT_EQ(whole("\xe2\x82"
                  "A"),
            kFffd + "A");                                   // interrupted: one U+FFFD, A kept
  EXPECT_EQ(whole("\xc0\x80"), kFffd + kFffd);              // overlong NUL
  EXPECT_EQ(whole("\xed\xa0\x80"), kFffd + kFffd + kFffd);  // surrogate
  EXPECT_EQ(whole("\xf4\x90\x80\x80"), kFffd + kFffd + kFffd + kFffd);  // past U+10FFFF
  EXPECT_EQ(whole("\xe0\x80\x80"), kFffd + kFffd + kFffd);              // overlong three-byte form
}

TEST(Utf8Stream, shouldReplaceASequenceStillIncompleteAtFlush) {
  Utf8Stream s;
  EXPECT_EQ(s.push("ok\xf0\x9f"), "ok");
  EXPECT_EQ(s.flush(), kFffd);
  EXPECT_EQ(s.push("x"), "x");  // reusable after flush
}

TEST(Utf8Stream, shouldGiveTheSameTextHoweverTheBytesAreCut) {
  std::mt19937 rng(7);
  const std::string alphabet[] = {"a",    " ",    "\xc3\xa9", "\xe4\xb8\xad", "\xf0\x9f\x98\x80",
                                  "\xff", "\x80", "\xe2\x82", "\xf0\x9f",     "\xed\xa0\x80",
                                  "\xc0"};
  for (int round = 0; round < 500; ++round) {
    std::string bytes;
    for (int i = 0; i < 12; ++i) bytes += alphabet[rng() % std::size(alphabet)];
    const std::string expected = whole(bytes);
    Utf8Stream s;
    std::string got;
    for (size_t at = 0; at < bytes.size();) {
      const size_t n = 1 + rng() % 4;
      got += s.push(std::string_view(bytes).substr(at, n));
      at += n;
    }
    got += s.flush();
    EXPECT_EQ(got, expected);
  }
}

TEST(Utf8Stream, shouldPassValidTextThroughUnchanged) {
  const std::string text =
      "plain ascii, \xc3\xa9t\xc3\xa9, \xe4\xb8\xad\xe6\x96\x87, \xf0\x9f\xa4\x96\n";
  EXPECT_EQ(whole(text), text);
}

}  // namespace
}  // namespace coproc::llm
