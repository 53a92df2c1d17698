// tests/data/test_tokenizer_regex.cpp: the regex engine (data/regex.h) and the Unicode
// pieces (data/tokenizer_unicode.h) under the tokenizer.
//
// Invariant checked: Oniguruma's find_iter semantics on hand-made cases (leftmost-first
// alternation, greedy/lazy/possessive, lookahead, anchors, (?i) folding, intervals, empty
// matches), clear errors for unsupported syntax, a budget instead of a hang on
// catastrophic backtracking; NFC equal to tokenizers' on the golden cases; categories as
// Oniguruma's (Unicode 16). The split patterns of the real files are checked end to end by
// tests/data/test_tokenizer.cpp. Goldens: tools/make_tokenizer_goldens.py goldens ("nfc").
#include <string>
#include <vector>

#include "core/error.h"
#include "core/json.h"
#include "data/regex.h"
#include "data/tokenizer_unicode.h"
#include "tests/catch.h"

using namespace crucible;
using Catch::Contains;
using data::unicode::GeneralCategory;

namespace {

// The text cut at the matches: "[m]" for a match, plain for the text between.
std::string cut(const std::string& pattern, const std::string& text) {
  data::Regex re(pattern);
  data::RegexScratch scratch;
  std::vector<data::RegexMatch> ms;
  re.find_all(text, ms, scratch);
  std::string out;
  std::size_t prev = 0;
  for (const auto& m : ms) {
    out += text.substr(prev, m.begin - prev);
    out += "[" + text.substr(m.begin, m.end - m.begin) + "]";
    prev = m.end;
  }
  return out + text.substr(prev);
}

std::string compile_error(const std::string& pattern) {
  try {
    data::Regex re(pattern);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("regex: Oniguruma find_iter semantics", "[tokenizer]") {
  CHECK(cut("a|ab", "abab") == "[a]b[a]b");  // leftmost-first, not longest
  CHECK(cut("ab|a", "abab") == "[ab][ab]");
  CHECK(cut("a+", "caaab") == "c[aaa]b");
  CHECK(cut("a+?", "aaa") == "[a][a][a]");
  CHECK(cut("a{2,3}", "aaaaaaa") == "[aaa][aaa]a");
  CHECK(cut("a{2,3}?", "aaaaa") == "[aa][aa]a");
  CHECK(cut("a{,2}b", "aaab b") == "a[aab] [b]");
  CHECK(cut("x{1}|{a", "x{a{") == "[x][{a]{");  // a '{' that is no interval is a literal
  CHECK(cut("(?:ab)+c", "ababcabc") == "[ababc][abc]");
  CHECK(cut("(ab){2}", "abababab") == "[abab][abab]");
  CHECK(cut("(?:a|b){1,2}?c", "abc bc") == "[abc] [bc]");
  CHECK(cut("a*+a", "aaaa") == "aaaa");     // possessive: never gives back
  CHECK(cut("(?>a+)b", "aaab") == "[aaab]");
  CHECK(cut("\\s+(?!\\S)|\\s+", "a   b  ") == "a[  ][ ]b[  ]");
  CHECK(cut("\\d+(?=px)", "10px 20em 30px") == "[10]px 20em [30]px");
  CHECK(cut("x*", "abxxc") == "[]a[]b[xx]c[]");  // empty matches, none right after a match
  CHECK(cut("^a|b$", "ab\nab") == "[a][b]\n[a][b]");
  CHECK(cut("\\Aa|b\\z", "ab\nab") == "[a]b\na[b]");
  CHECK(cut("\\bis\\b", "is this island is") == "[is] this island [is]");
  CHECK(cut(".", "a\nb") == "[a]\n[b]");
  CHECK(cut("(?i:'s|'ll)", "'S 'LL 'Ll 'ſ 'x") == "['S] ['LL] ['Ll] ['ſ] 'x");
  CHECK(cut("(?i)abc", "ABC abc AbC") == "[ABC] [abc] [AbC]");  // trailing (?i): the whole pattern
  CHECK(cut("a(?i)b|c", "aB C c") == "[aB] C c");                // = a(?i:b|c): (?i) runs to the group's end
  CHECK(cut("[^\\s\\p{L}]+", "ab, 12!? x") == "ab[,] [12!?] x");
  CHECK(cut("[\\p{L}\\p{M}]+", "e\xCC\x81t\xC3\xA9 42") == "[e\xCC\x81t\xC3\xA9] 42");
  CHECK(cut("[一-龥]+", "ab中文cd") == "ab[中文]cd");
  CHECK(cut("[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+", "x.Net -go [ab") == "x[.Net] [-go] [[ab]");
  CHECK(cut("\\p{N}{1,3}", "1234567") == "[123][456][7]");
  CHECK(cut("\\P{L}+", "ab12cd") == "ab[12]cd");
  CHECK(cut("\\p{^N}+", "ab12cd") == "[ab]12[cd]");
  CHECK(cut("\\w+", "snake_case x²") == "[snake_case] [x²]");
  CHECK(cut("\\x41\\x{1F600}\\u00e9", "A\xF0\x9F\x98\x80\xC3\xA9") == "[A\xF0\x9F\x98\x80\xC3\xA9]");
  CHECK(cut("\\s", "\t\xC2\x85\xE3\x80\x80\xE2\x80\x8B") == "[\t][\xC2\x85][\xE3\x80\x80]\xE2\x80\x8B");  // ZWSP is no space
  const data::Regex lit = data::Regex::literal("a.b");
  data::RegexScratch scratch;
  data::RegexMatch m;
  REQUIRE(lit.find("xa.b aab", 0, m, scratch));
  CHECK((m.begin == 1 && m.end == 4));
  CHECK_FALSE(lit.find("xa.b aab", 2, m, scratch));
}

TEST_CASE("regex: unsupported or bad syntax is an error naming pattern and offset", "[tokenizer]") {
  CHECK_THAT(compile_error("(a)\\1"), Contains("backreferences are not supported") && Contains("'(a)\\1'"));
  CHECK_THAT(compile_error("(?<=a)b"), Contains("lookbehind is not supported"));
  CHECK_THAT(compile_error("[a[b]]"), Contains("nested character classes") && Contains("offset 2"));
  CHECK_THAT(compile_error("[a&&b]"), Contains("intersection"));
  CHECK_THAT(compile_error("\\h"), Contains("unsupported escape '\\h'"));
  CHECK_THAT(compile_error("\\p{Greek}"), Contains("unsupported Unicode property 'greek'"));
  CHECK_THAT(compile_error("(ab"), Contains("missing ')'"));
  CHECK_THAT(compile_error("ab)"), Contains("unmatched ')'"));
  CHECK_THAT(compile_error("[ab"), Contains("missing ']'"));
  CHECK_THAT(compile_error("*a"), Contains("quantifier without an operand"));
  CHECK_THAT(compile_error("a{3,1}"), Contains("out of order"));
  CHECK_THAT(compile_error("a{1,2}+"), Contains("'+' after an interval"));
  CHECK_THAT(compile_error("[z-a]"), Contains("range out of order"));
  CHECK_THAT(compile_error("(?x)a"), Contains("unsupported group syntax"));
  CHECK_THAT(compile_error("(?i:é)"), Contains("non-ASCII letters"));
  CHECK_THAT(compile_error("(a*)*"), Contains("can match the empty string"));
  CHECK_THAT(compile_error("a{200000}"), Contains("repeat count too large"));
  CHECK_THAT(compile_error(std::string(100, '(') + std::string(100, ')')), Contains("nest too deep"));
  CHECK_THAT(compile_error("(?:ab{2}){40000}"), Contains("too large"));
  CHECK_THAT(compile_error("\xFF"), Contains("invalid UTF-8"));
  CHECK(compile_error("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                      "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
            .empty());
}

TEST_CASE("regex: catastrophic backtracking throws instead of hanging", "[tokenizer]") {
  data::Regex re("(?:a|a)+b");
  data::RegexScratch scratch;
  std::vector<data::RegexMatch> ms;
  CHECK_THROWS_WITH(re.find_all(std::string(40, 'a'), ms, scratch), Contains("backtracking limit"));
  ms.clear();
  re.find_all("aaab", ms, scratch);  // fine on a short input
  CHECK(ms.size() == 1);
}

TEST_CASE("unicode: categories, UTF-8 checks and NFC equal tokenizers'", "[tokenizer]") {
  using data::unicode::general_category;
  CHECK(general_category('A') == GeneralCategory::Lu);
  CHECK(general_category(0x4E2D) == GeneralCategory::Lo);   // 中
  CHECK(general_category(0x0301) == GeneralCategory::Mn);
  CHECK(general_category(0x0661) == GeneralCategory::Nd);   // Arabic-Indic one
  CHECK(general_category(0x1F600) == GeneralCategory::So);  // 😀
  CHECK(general_category(0xA7CB) == GeneralCategory::Lu);   // new in Unicode 16, as Oniguruma has it
  CHECK(general_category(0x0378) == GeneralCategory::Cn);
  CHECK(general_category(0x10FFFF) == GeneralCategory::Cn);
  CHECK(data::unicode::is_space(0x3000));
  CHECK(data::unicode::is_space(0x85));
  CHECK_FALSE(data::unicode::is_space(0x200B));
  using data::unicode::utf8_invalid_at;
  CHECK(utf8_invalid_at("plain ascii text, long enough for the fast path") == std::string_view::npos);
  CHECK(utf8_invalid_at("\xF0\x9F\x98\x80 \xE4\xB8\xAD") == std::string_view::npos);
  CHECK(utf8_invalid_at("ab\xC0\xAF") == 2);          // overlong
  CHECK(utf8_invalid_at("abc\xED\xA0\x80") == 3);      // surrogate
  CHECK(utf8_invalid_at("\xF4\x90\x80\x80") == 0);     // > U+10FFFF
  CHECK(utf8_invalid_at("12345678\xE4\xB8") == 8);     // cut short
  CHECK(utf8_invalid_at(std::string_view("a\0b", 3)) == std::string_view::npos);

  const json::Value g = json::parse_file(std::string(CRUCIBLE_SOURCE_DIR) + "/tests/data/tokenizer_golden/golden.json");
  const json::Array& cases = g.at("nfc").as_array();
  REQUIRE(cases.size() > 300);
  int bad = 0;
  for (const json::Value& c : cases) {
    const std::string& in = c.as_array()[0].as_string();
    const std::string& want = c.as_array()[1].as_string();
    std::string got;
    data::unicode::nfc_append(in, got);
    if (got != want && bad++ < 5) FAIL_CHECK("NFC " << json::quote(in) << " -> " << json::quote(got) << ", want " << json::quote(want));
    if (data::unicode::nfc_quick_check(in)) CHECK(in == want);  // the quick check never lies
  }
  CHECK(bad == 0);
}
