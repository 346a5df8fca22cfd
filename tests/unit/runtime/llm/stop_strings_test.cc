// Stop strings (runtime/llm/stop_strings.h): text fed piece by piece, as a detokenizer produces
// it, comes out without the stop string and what follows, whatever the pieces.
#include "llm/stop_strings.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace coproc::llm {
namespace {

struct Outcome {
  std::string text;  // everything emitted, flush included
  bool stopped = false;
  int32_t stop_index = -1;
};

Outcome run(StopMatcher matcher, const std::vector<std::string>& pieces) {
  Outcome out;
  for (const std::string& piece : pieces) {
    const StopFeed feed = matcher.feed(piece);
    out.text += feed.text;
    if (feed.stopped) {
      out.stopped = true;
      out.stop_index = feed.stop_index;
    }
  }
  out.text += matcher.flush();
  return out;
}

TEST(StopMatcher, shouldPassTextThroughWithoutStops) {
  StopMatcher matcher({});
  EXPECT_EQ(matcher.feed("hello ").text, "hello ");
  EXPECT_EQ(matcher.feed("world").text, "world");
  EXPECT_EQ(matcher.flush(), "");
}

TEST(StopMatcher, shouldStopOnAStringWithinOnePiece) {
  StopMatcher matcher({"END"});
  const StopFeed feed = matcher.feed("the END of it");
  EXPECT_TRUE(feed.stopped);
  EXPECT_EQ(feed.text, "the ");
  EXPECT_EQ(feed.stop_index, 0);
}

TEST(StopMatcher, shouldStopOnAStringSpanningPieces) {
  StopMatcher matcher({"###"});
  StopFeed feed = matcher.feed("ab#");
  EXPECT_EQ(feed.text, "ab");  // "#" may start the stop: held
  EXPECT_FALSE(feed.stopped);
  feed = matcher.feed("#");
  EXPECT_EQ(feed.text, "");
  EXPECT_FALSE(feed.stopped);
  feed = matcher.feed("#cd");
  EXPECT_TRUE(feed.stopped);
  EXPECT_EQ(feed.text, "");
  EXPECT_TRUE(matcher.stopped());
}

TEST(StopMatcher, shouldReleaseHeldTextOnceItCannotStartAStop) {
  StopMatcher matcher({"###"});
  EXPECT_EQ(matcher.feed("a##").text, "a");
  EXPECT_EQ(matcher.feed("b").text, "##b");
}

TEST(StopMatcher, shouldStopAtTheVeryStart) {
  StopMatcher matcher({"<|im_end|>"});
  const StopFeed feed = matcher.feed("<|im_end|>more");
  EXPECT_TRUE(feed.stopped);
  EXPECT_EQ(feed.text, "");
  EXPECT_EQ(matcher.flush(), "");
}

TEST(StopMatcher, shouldStayStoppedAfterAStop) {
  StopMatcher matcher({"x"});
  EXPECT_TRUE(matcher.feed("ax").stopped);
  const StopFeed after = matcher.feed("more text");
  EXPECT_TRUE(after.stopped);
  EXPECT_EQ(after.text, "");
  EXPECT_EQ(matcher.flush(), "");
}

TEST(StopMatcher, shouldFlushTheHeldTailAtTheEnd) {
  StopMatcher matcher({"STOP"});
  EXPECT_EQ(matcher.feed("let us ST").text, "let us ");
  EXPECT_EQ(matcher.flush(), "ST");
  EXPECT_EQ(matcher.flush(), "");
}

TEST(StopMatcher, shouldFindAStopThatOverlapsItsOwnPrefix) {
  // "aaab": after "aaa" the tail "aa" may start "aab"; the match begins at the second 'a'.
  const Outcome out = run(StopMatcher({"aab"}), {"a", "a", "a", "b", "c"});
  EXPECT_TRUE(out.stopped);
  EXPECT_EQ(out.text, "a");
}

TEST(StopMatcher, shouldHoldTheLongestTailAnyStopCouldStartWith) {
  StopMatcher matcher({"xyz", "yzw"});
  EXPECT_EQ(matcher.feed("axy").text, "a");  // "xy" starts "xyz"
  EXPECT_EQ(matcher.feed("z").text, "");     // stopped on "xyz"
  EXPECT_TRUE(matcher.stopped());
}

TEST(StopMatcher, shouldPickTheStopThatCompletesFirstAndSayWhichOne) {
  // "bc" completes before "abcd" could; the index is the constructor's.
  const Outcome first = run(StopMatcher({"abcd", "bc"}), {"xabcd"});
  EXPECT_EQ(first.text, "xa");
  EXPECT_EQ(first.stop_index, 1);
  // Both end at the same byte: the one starting first (the longer) wins.
  const Outcome same_end = run(StopMatcher({"cd", "bcd"}), {"abcde"});
  EXPECT_EQ(same_end.text, "a");
  EXPECT_EQ(same_end.stop_index, 1);
}

TEST(StopMatcher, shouldIgnoreEmptyStopStringsButKeepTheIndicesOfTheOthers) {
  const Outcome out = run(StopMatcher({"", "z"}), {"abc", "z"});
  EXPECT_EQ(out.text, "abc");
  EXPECT_EQ(out.stop_index, 1);
}

TEST(StopMatcher, shouldMatchMultiByteStopsSplitInsideACharacter) {
  const std::string stop =
      "\xE2\x80\x94"
      "end";  // an em dash, then "end"
  const Outcome out = run(StopMatcher({stop}), {"caf\xC3\xA9 \xE2", "\x80", "\x94", "e", "nd!"});
  EXPECT_TRUE(out.stopped);
  EXPECT_EQ(out.text, "caf\xC3\xA9 ");
}

TEST(StopMatcher, shouldGiveTheSameResultHoweverTheTextIsCut) {
  const std::vector<std::string> stops{"\n\nUser:", "abab", "b\n\n", "</s>"};
  const std::vector<std::string> texts{
      "a reply\n\nUser: next", "xxababab tail", "ab\n\nUser:", "no stop here <", "</", "just </s"};
  std::mt19937 rng(5);
  for (const std::string& text : texts) {
    const Outcome whole = run(StopMatcher(stops), {text});
    for (int trial = 0; trial < 200; ++trial) {
      std::vector<std::string> pieces;
      for (size_t at = 0; at < text.size();) {
        const size_t len = 1 + rng() % 4;
        pieces.push_back(text.substr(at, len));
        at += len;
      }
      const Outcome cut = run(StopMatcher(stops), pieces);
      ASSERT_EQ(cut.text, whole.text) << text;
      ASSERT_EQ(cut.stopped, whole.stopped) << text;
      ASSERT_EQ(cut.stop_index, whole.stop_index) << text;
    }
  }
  // And the whole-text results themselves are right.
  EXPECT_EQ(run(StopMatcher(stops), {texts[0]}).text, "a reply");
  EXPECT_EQ(run(StopMatcher(stops), {texts[1]}).text, "xx");
  EXPECT_EQ(run(StopMatcher(stops), {texts[2]}).text, "a");  // "b\n\n" ends first
  EXPECT_EQ(run(StopMatcher(stops), {texts[3]}).text, "no stop here <");
  EXPECT_FALSE(run(StopMatcher(stops), {texts[5]}).stopped);
}

}  // namespace
}  // namespace coproc::llm
