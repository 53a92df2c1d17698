// tests/rewards/test_rewards.cpp: format, language consistency, length, composite, registry, hostile input.
//
// Invariant under test: each reward scores what its header states (DAPO's
// length formula checked number by number), the composite reports every part,
// the registry rejects unknown names and options by name, and no input (empty,
// megabytes, unbalanced, 10^4 nested \frac, NaN / 1e999, invalid UTF-8, NUL)
// makes any reward throw, crash, or take long.
// Reference: reference/r1_recipe.md §3.2-3.3, §6.1 (DAPO Eq. 13); DESIGN.md §5.
#include <chrono>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/json.h"
#include "rewards/composite.h"
#include "rewards/correctness.h"
#include "rewards/format.h"
#include "rewards/language.h"
#include "rewards/length.h"
#include "tests/catch.h"

namespace rw = crucible::rewards;
namespace json = crucible::json;

namespace {

rw::Sample sample(std::string_view completion, std::string_view answer = "", std::int64_t tokens = -1) {
  rw::Sample s;
  s.completion = completion;
  s.answer = answer;
  s.completion_tokens = tokens;
  return s;
}

}  // namespace

TEST_CASE("format: one think block, then a non-empty answer", "[rewards][format]") {
  const rw::FormatReward f;
  CHECK(f.score(sample("<think>\nreason\n</think>\n\nThe answer is 4.")).score == 1.0);
  CHECK(f.score(sample("  \n<think>r</think>a")).score == 1.0);
  // The R1-distill template pre-fills "<think>\n": the completion starts inside the block.
  const rw::RewardResult prefilled = f.score(sample("reason\n</think>\n\nanswer"));
  CHECK(prefilled.score == 1.0);
  CHECK_THAT(prefilled.reason, Catch::Contains("prefilled"));
  const rw::FormatReward strict(rw::FormatConfig{false});
  CHECK(strict.score(sample("reason\n</think>\n\nanswer")).score == 0.0);
  CHECK(strict.score(sample("<think>reason</think>answer")).score == 1.0);

  struct Bad {
    const char* text;
    const char* why;
  };
  for (const Bad& b : {Bad{"<think>r</think>", "no answer"}, Bad{"<think>r</think>  \n ", "no answer"},
                       Bad{"<think>  </think>answer", "empty"}, Bad{"<think>r", "not closed"},
                       Bad{"<think>a</think>b</think>c", "2 </think>"},
                       Bad{"<think>a<think>b</think>c", "<think> tags"},
                       Bad{"", "not closed"}, Bad{"just an answer", "not closed"}}) {
    INFO(b.text);
    const rw::RewardResult r = f.score(sample(b.text));
    CHECK(r.score == 0.0);
    CHECK_THAT(r.reason, Catch::Contains(b.why));
  }
  CHECK(rw::format_config_from_json(json::parse(R"({"prefilled_think": false})")).prefilled_think == false);
}

TEST_CASE("language consistency: share of target-language words in the chain of thought", "[rewards][language]") {
  const rw::LanguageConsistencyReward en, zh(rw::LanguageConfig{"zh"});
  CHECK(en.score(sample("<think>Let me add the numbers.</think>5")).score == 1.0);
  // Words: Let, me, this (Latin) and 思, 考 (Han): 3 of 5 English, 2 of 5 Chinese.
  const std::string mixed = "<think>Let me \xE6\x80\x9D\xE8\x80\x83 this</think>answer words ignored";
  CHECK(en.score(sample(mixed)).score == Approx(0.6));
  CHECK(zh.score(sample(mixed)).score == Approx(0.4));
  CHECK_THAT(en.score(sample(mixed)).reason, Catch::Contains("3 of 5 words in en"));
  // LaTeX commands, single-letter variables and digits are not words.
  CHECK(rw::count_words("\\frac{a}{b} = 12 x y", "en").total == 0);
  CHECK(rw::count_words("so \\sqrt{x} works", "en").total == 2);
  // Other scripts count as non-target words; invalid UTF-8 separates words.
  const rw::WordCounts cyr = rw::count_words("hello \xD0\xBF\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82", "en");
  CHECK(cyr.total == 2);
  CHECK(cyr.target == 1);
  CHECK(rw::count_words("ab\xFF" "cd", "en").total == 2);
  // Nothing to judge pays nothing.
  CHECK(en.score(sample("<think>2+2=4</think>4")).score == 0.0);
  CHECK_THROWS_WITH(rw::LanguageConfig{"fr"}.validate(), Catch::Contains("en") && Catch::Contains("fr"));
}

TEST_CASE("length: DAPO soft overlong punishment, number by number", "[rewards][length]") {
  const rw::LengthConfig dapo;  // L_max 20480, L_cache 4096 (DAPO §4.1)
  CHECK(dapo.max_tokens == 20480);
  CHECK(dapo.cache == 4096);
  CHECK(rw::dapo_length_penalty(0, dapo) == 0.0);
  CHECK(rw::dapo_length_penalty(16384, dapo) == 0.0);
  CHECK(rw::dapo_length_penalty(16385, dapo) == -1.0 / 4096);
  CHECK(rw::dapo_length_penalty(18432, dapo) == -0.5);
  CHECK(rw::dapo_length_penalty(20479, dapo) == -4095.0 / 4096);
  CHECK(rw::dapo_length_penalty(20480, dapo) == -1.0);
  CHECK(rw::dapo_length_penalty(20481, dapo) == -1.0);
  CHECK(rw::dapo_length_penalty(1'000'000, dapo) == -1.0);
  const rw::LengthConfig hard{100, 0};  // no soft zone: a step at L_max
  CHECK(rw::dapo_length_penalty(100, hard) == 0.0);
  CHECK(rw::dapo_length_penalty(101, hard) == -1.0);

  const rw::LengthReward r(rw::LengthConfig{100, 20});
  CHECK(r.score(sample("x", "", 90)).score == -0.5);
  CHECK_THAT(r.score(sample("x", "", 90)).reason, Catch::Contains("-0.5"));
  const rw::RewardResult unknown = r.score(sample("x"));
  CHECK(unknown.data_error);
  CHECK_THAT(unknown.reason, Catch::Contains("completion_tokens"));
  CHECK_THROWS_WITH((rw::LengthConfig{100, 200}.validate()), Catch::Contains("cache"));
  CHECK_THROWS_WITH((rw::LengthConfig{0, 0}.validate()), Catch::Contains("max_tokens"));
}

TEST_CASE("composite: weighted sum that reports every component", "[rewards][composite]") {
  const std::vector<rw::RewardWeight> w = rw::parse_reward_spec(" correctness = 1 , format=0.5,length");
  REQUIRE(w.size() == 3);
  CHECK(w[0].name == "correctness");
  CHECK(w[1].weight == 0.5);
  CHECK(w[2].weight == 1.0);

  const rw::CompositeReward c("correctness=1,format=0.5,length=2",
                              json::parse(R"({"length": {"max_tokens": 100, "cache": 20}})"));
  CHECK(c.spec() == "correctness=1,format=0.5,length=2");
  CHECK(c.needs_answer());
  CHECK(c.needs_tokens());
  const rw::CompositeResult r = c.score_all(sample("<think>r</think>\\boxed{4}", "4", 90));
  REQUIRE(r.parts.size() == 3);
  CHECK(r.parts[0].name == "correctness");
  CHECK(r.parts[0].r.score == 1.0);
  CHECK(r.parts[1].r.score == 1.0);
  CHECK(r.parts[2].r.score == -0.5);
  CHECK(r.total == 1.0 + 0.5 - 1.0);
  CHECK_FALSE(r.data_error);
  const rw::RewardResult joined = c.score(sample("<think>r</think>\\boxed{5}", "4", 10));
  CHECK(joined.score == 0.5);
  CHECK_THAT(joined.reason, Catch::Contains("correctness=0 (") && Catch::Contains("format=1 (") &&
                                Catch::Contains("length=0 ("));
  // A data error in any part marks the sample.
  CHECK(c.score_all(sample("<think>r</think>\\boxed{4}", "\\frac{", 10)).data_error);

  for (const char* bad : {"", "correctness=", "correctness=abc", "correctness=inf", "=1", "foo=1",
                          "correctness=1,,format=1", "format=1,format=2"}) {
    INFO("spec '" << bad << "'");
    CHECK_THROWS_AS(rw::parse_reward_spec(bad), crucible::Error);
  }
  CHECK_THROWS_WITH(rw::parse_reward_spec("corectness=1"), Catch::Contains("unknown reward 'corectness'"));
  CHECK_THROWS_WITH(rw::CompositeReward("format=1", json::parse(R"({"length": {}})")),
                    Catch::Contains("'length'") && Catch::Contains("not in the spec"));
}

TEST_CASE("registry: names, options and errors that name the reward and the key", "[rewards][registry]") {
  for (const std::string& n : rw::reward_names()) {
    auto r = rw::make_reward(n);
    CHECK(r->name() == n);
    CHECK_NOTHROW(rw::make_reward(n, json::Value()));
  }
  CHECK_THROWS_WITH(rw::make_reward("bogus"), Catch::Contains("unknown reward 'bogus'"));
  CHECK_THROWS_WITH(rw::make_reward("correctness", json::parse(R"({"rel_tl": 1})")),
                    Catch::Contains("reward 'correctness'") && Catch::Contains("unknown option 'rel_tl'") &&
                        Catch::Contains("rel_tol"));
  CHECK_THROWS_WITH(rw::make_reward("length", json::parse(R"({"max_tokens": 1.5})")),
                    Catch::Contains("'max_tokens' must be an integer"));
  CHECK_THROWS_WITH(rw::make_reward("format", json::parse("[1]")), Catch::Contains("must be a JSON object"));
  CHECK_THROWS_WITH(rw::make_reward("language_consistency", json::parse(R"({"target": "xx"})")),
                    Catch::Contains("target"));
}

TEST_CASE("no input crashes or hangs a reward", "[rewards][robust]") {
  std::vector<std::string> inputs = {
      "", " ", "</think>", "<think>", "\\boxed{", "\\boxed{}", "}}}}", "{{{{", "\\", "$", "$$", "\\[", "\\(\\)",
      "NaN", "nan", "inf", "-inf", "1e999", "1e-999", "\\infty - \\infty", "0/0", "\\frac{1}{0}", "0^{-1}",
      "10^{10^{10}}", "(-8)^{1/3}", "(-1)^{0.5}", "\\sqrt{-1}", "\\ln 0", "170!", "1000!", "\\binom{1000}{500}",
      "\\frac", "\\sqrt[", "\\begin{pmatrix}", "\\end{pmatrix}", "\\begin{pmatrix}1&2\\\\3\\end{pmatrix}",
      "|||", "x_", "x^", "^", "_", "!!!!", "%%%", "\\pm\\pm\\pm\\pm", "1,2,,3", "(,)", "[)", "\\{\\}",
      std::string("a\0b", 3), "\xFF\xFE\xC0\xAF", "\xE2\x88", "答案是", "The answer is \\boxed{\\text{}}",
      "999999999999999999999999999999999999999999999999999999", "0." + std::string(5000, '3'),
  };
  std::string deep;
  for (int i = 0; i < 10000; ++i) deep += "\\frac{1}{";
  deep += "2";
  for (int i = 0; i < 10000; ++i) deep += "}";
  inputs.push_back(deep);
  inputs.push_back(std::string(20000, '(') + "1" + std::string(20000, ')'));
  inputs.push_back(std::string(100000, '-') + "1");
  std::string many_boxes;
  for (int i = 0; i < 20000; ++i) many_boxes += "\\boxed{";
  inputs.push_back(many_boxes);
  std::string long_sum = "1";
  for (int i = 0; i < 30000; ++i) long_sum += "+x";
  inputs.push_back(long_sum);
  inputs.push_back("<think>" + std::string(1 << 20, 'a') + "</think>\\boxed{" + std::string(1 << 18, '9') + "}");

  const rw::CompositeReward all("correctness=1,format=1,language_consistency=1,length=1");
  const auto t0 = std::chrono::steady_clock::now();
  for (const std::string& in : inputs) {
    for (const std::string& completion : {in, "<think>r</think>\\boxed{" + in + "}", "</think>Answer: " + in}) {
      for (const std::string& answer : {in, std::string("1")}) {
        INFO("input of " << in.size() << " bytes starting '" << in.substr(0, 40) << "'");
        rw::CompositeResult r;
        REQUIRE_NOTHROW(r = all.score_all(sample(completion, answer, static_cast<std::int64_t>(completion.size()))));
        CHECK(std::isfinite(r.total));
        for (const auto& p : r.parts) CHECK(std::isfinite(p.r.score));
      }
    }
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(s < 10.0);
}

TEST_CASE("random LaTeX token soup never throws and scores within range", "[rewards][robust]") {
  // The fuzz target mutates bytes; this mixes whole LaTeX tokens, which reach deeper into the parser.
  static const char* kTokens[] = {"\\frac", "\\dfrac", "\\sqrt", "[", "]", "{", "}", "(", ")", "\\{", "\\}", "^", "_",
                                  "+", "-", "*", "/", "=", "<", "\\le", ",", "x", "y", "e", "\\pi", "\\infty", "1",
                                  "23", "0.5", ".", "%", "\\%", "!", "|", "\\pm", "\\cup", "\\in", "\\text{", "cm",
                                  "\\left(", "\\right)", "\\boxed{", "</think>", "<think>", "$", "\\\\", "&",
                                  "\\begin{pmatrix}", "\\end{pmatrix}", "\\sin", "\\log_", "\\binom", " ", "\\,"};
  const rw::CompositeReward all("correctness=1,format=1");
  std::mt19937_64 gen(7);
  for (int it = 0; it < 3000; ++it) {
    std::string a, b;
    const int n = 1 + static_cast<int>(gen() % 24), m = 1 + static_cast<int>(gen() % 12);
    for (int i = 0; i < n; ++i) a += kTokens[gen() % std::size(kTokens)];
    for (int i = 0; i < m; ++i) b += kTokens[gen() % std::size(kTokens)];
    INFO("completion '" << a << "' answer '" << b << "'");
    rw::CompositeResult r;
    REQUIRE_NOTHROW(r = all.score_all(sample("<think>r</think>\\boxed{" + a + "}", b)));
    REQUIRE(r.parts.size() == 2);
    CHECK((r.parts[0].r.score == 0.0 || r.parts[0].r.score == 1.0));
    if (r.parts[0].r.data_error) CHECK(r.parts[0].r.score == 0.0);
  }
}
