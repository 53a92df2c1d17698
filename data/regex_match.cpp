// data/regex_match.cpp: the backtracking matcher and the search loops of data/regex.h.
//
// The machine keeps its choice points on an explicit stack (RegexScratch), so input
// length never turns into C++ recursion; only lookahead and atomic bodies recurse, as
// deep as the pattern nests (bounded by the parser). A run of one class (\p{L}+) is
// consumed in one step and backs off one code point per retry.
// Invariant: the first match the machine reaches is the leftmost-first one (alternatives
// in order, greedy before lazy), as in Oniguruma; every step counts against a budget so
// a catastrophic pattern throws instead of hanging.
// Reference: R. Cox, "Regular Expression Matching: the Virtual Machine Approach" (2009).
#include <string>

#include "core/error.h"
#include "data/regex.h"
#include "data/regex_program.h"

namespace crucible::data {

namespace regex_detail {
namespace {

enum FrameKind : std::uint32_t { kAlt, kGreedyBack, kLazyMore };

// Budget: Oniguruma's default retry limit is 10^7 per match; ours counts instructions
// over one search and grows with the text so long inputs are never cut short.
constexpr std::uint64_t kBaseSteps = 10'000'000;
constexpr std::uint64_t kStepsPerByte = 4096;

class Matcher {
 public:
  Matcher(const Program& p, std::string_view text, std::vector<RegexFrame>& stack)
      : p_(p),
        s_(reinterpret_cast<const unsigned char*>(text.data())),
        n_(text.size()),
        stack_(stack),
        budget_(kBaseSteps + kStepsPerByte * text.size()) {
    if (stack_.size() < 64) stack_.resize(64);
  }

  // Runs the (sub-)program at pc from byte pos; on a match sets end and returns true.
  bool run(std::uint32_t pc, std::size_t pos, std::size_t& end) {
    const std::size_t base = sp_;  // this run's choice points live above base
    for (;;) {
      if (++steps_ > budget_) over_budget();
      const Inst& in = p_.code[pc];
      bool ok = true;
      switch (in.op) {
        case Op::Class: {
          char32_t cp;
          int len;
          ok = pos < n_ && (len = decode(pos, cp), p_.classes[in.arg].contains(cp));
          if (ok) {
            pos += static_cast<std::size_t>(len);
            ++pc;
          }
          break;
        }
        case Op::ClassRepeat: {
          const CharClass& cls = p_.classes[in.arg];
          const std::uint32_t limit = in.mode == RepeatMode::Lazy ? in.min : in.max;
          std::size_t count = 0;
          while (count < limit && pos < n_) {
            char32_t cp;
            const int len = decode(pos, cp);
            if (!cls.contains(cp)) break;
            pos += static_cast<std::size_t>(len);
            ++count;
          }
          steps_ += count / 16;
          ok = count >= in.min;
          if (ok) {
            if (in.mode == RepeatMode::Greedy && count > in.min) push({pc, kGreedyBack, pos, count});
            if (in.mode == RepeatMode::Lazy && count < in.max) push({pc, kLazyMore, pos, count});
            ++pc;
          }
          break;
        }
        case Op::Split:
          if (in.arg != kNoGuard && !can_start(p_.guards[in.arg], pos)) {
            pc = in.y;  // the first branch cannot match here: no choice point needed
            break;
          }
          push({in.y, kAlt, pos, 0});
          pc = in.x;
          break;
        case Op::Jmp: pc = in.x; break;
        case Op::Match:
          end = pos;
          sp_ = base;  // drop this run's choice points: nobody backtracks into it
          return true;
        case Op::Look: {
          std::size_t e;
          ok = run(in.x, pos, e) != in.negate;
          if (ok) ++pc;
          break;
        }
        case Op::Atomic: {
          std::size_t e;
          ok = run(in.x, pos, e);
          if (ok) {
            pos = e;
            ++pc;
          }
          break;
        }
        case Op::Assert:
          ok = check(static_cast<AssertKind>(in.arg), pos);
          if (ok) ++pc;
          break;
      }
      if (!ok && !backtrack(base, pc, pos)) return false;
    }
  }

 private:
  int decode(std::size_t pos, char32_t& cp) const {
    if (s_[pos] < 0x80) {
      cp = s_[pos];
      return 1;
    }
    return unicode::utf8_decode(s_ + pos, cp);
  }

  bool can_start(const Guard& g, std::size_t pos) const {
    if (pos >= n_) return false;
    const unsigned char b = s_[pos];
    if (b < 0x80) return (g.ascii[b >> 6] >> (b & 63)) & 1u;
    char32_t cp;
    unicode::utf8_decode(s_ + pos, cp);
    for (std::uint32_t c : g.classes)
      if (p_.classes[c].contains(cp)) return true;
    return false;
  }

  void push(const RegexFrame& f) {
    if (sp_ == stack_.size()) stack_.resize(2 * stack_.size());
    stack_[sp_++] = f;
  }

  // Pops choice points until one gives a new (pc, pos); false when none is left above base.
  bool backtrack(std::size_t base, std::uint32_t& pc, std::size_t& pos) {
    for (;;) {
      if (sp_ == base) return false;
      if (++steps_ > budget_) over_budget();
      const RegexFrame f = stack_[--sp_];
      switch (f.kind) {
        case kAlt:
          pc = f.pc;
          pos = f.pos;
          return true;
        case kGreedyBack: {  // give back one code point
          std::size_t p = f.pos - 1;
          while ((s_[p] & 0xC0) == 0x80) --p;
          if (f.aux - 1 > p_.code[f.pc].min) push({f.pc, kGreedyBack, p, f.aux - 1});
          pc = f.pc + 1;
          pos = p;
          return true;
        }
        case kLazyMore: {  // take one more code point
          if (f.pos >= n_) break;
          char32_t cp;
          const int len = decode(f.pos, cp);
          if (!p_.classes[p_.code[f.pc].arg].contains(cp)) break;
          const std::size_t p = f.pos + static_cast<std::size_t>(len);
          if (f.aux + 1 < p_.code[f.pc].max) push({f.pc, kLazyMore, p, f.aux + 1});
          pc = f.pc + 1;
          pos = p;
          return true;
        }
      }
    }
  }

  bool check(AssertKind k, std::size_t pos) const {
    switch (k) {
      case AssertKind::TextStart: return pos == 0;
      case AssertKind::TextEnd: return pos == n_;
      case AssertKind::TextEndNewline: return pos == n_ || (pos + 1 == n_ && s_[pos] == '\n');
      case AssertKind::LineStart: return pos == 0 || s_[pos - 1] == '\n';
      case AssertKind::LineEnd: return pos == n_ || s_[pos] == '\n';
      case AssertKind::WordBoundary:
      case AssertKind::NotWordBoundary: {
        char32_t cp;
        const bool before = pos > 0 && is_word_char(unicode::utf8_decode_before(s_, s_ + pos));
        const bool after = pos < n_ && (decode(pos, cp), is_word_char(cp));
        return (before != after) == (k == AssertKind::WordBoundary);
      }
    }
    return false;
  }

  [[noreturn]] void over_budget() const {
    CRUCIBLE_FAIL("regex '", p_.pattern, "': backtracking limit exceeded on a ", n_,
                  "-byte text (the pattern is too ambiguous for this input)");
  }

  const Program& p_;
  const unsigned char* s_;
  std::size_t n_;
  std::vector<RegexFrame>& stack_;  // [0, sp_) in use; grows by doubling
  std::size_t sp_ = 0;
  std::uint64_t steps_ = 0, budget_;
};

int utf8_length(unsigned char lead) { return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4; }

bool find_from(const Program& p, Matcher& m, std::string_view text, std::size_t from, RegexMatch& out) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  for (std::size_t at = from; at <= n;) {
    if (!p.first_any) {
      if (at == n) return false;  // the pattern needs at least one code point
      const unsigned char b = s[at];
      bool can_start;
      if (b < 0x80) {
        can_start = (p.first_ascii[b >> 6] >> (b & 63)) & 1u;
      } else {
        char32_t cp;
        unicode::utf8_decode(s + at, cp);
        can_start = false;
        for (std::uint32_t c : p.first_classes)
          if (p.classes[c].contains(cp)) {
            can_start = true;
            break;
          }
      }
      if (!can_start) {
        at += static_cast<std::size_t>(utf8_length(b));
        continue;
      }
    }
    std::size_t end;
    if (m.run(0, at, end)) {
      out = {at, end};
      return true;
    }
    if (at == n) break;
    at += static_cast<std::size_t>(utf8_length(s[at]));
  }
  return false;
}

}  // namespace
}  // namespace regex_detail

bool Regex::find(std::string_view text, std::size_t from, RegexMatch& m, RegexScratch& scratch) const {
  regex_detail::Matcher matcher(*prog_, text, scratch.stack);
  return regex_detail::find_from(*prog_, matcher, text, from, m);
}

void Regex::find_all(std::string_view text, std::vector<RegexMatch>& out, RegexScratch& scratch) const {
  regex_detail::Matcher matcher(*prog_, text, scratch.stack);
  const std::size_t n = text.size();
  std::size_t next = 0;
  bool have_last = false;
  std::size_t last_end = 0;
  while (next <= n) {
    RegexMatch m;
    if (!regex_detail::find_from(*prog_, matcher, text, next, m)) break;
    if (m.begin == m.end) {
      next = m.end < n ? m.end + static_cast<std::size_t>(regex_detail::utf8_length(static_cast<unsigned char>(text[m.end])))
                       : n + 1;
      if (have_last && last_end == m.end) continue;  // no empty match right after a match
    } else {
      next = m.end;
    }
    have_last = true;
    last_end = m.end;
    out.push_back(m);
  }
}

}  // namespace crucible::data
