// data/regex.cpp: the compiler of data/regex.h (AST -> instructions) and Regex itself.
//
// A repeated single class becomes one ClassRepeat instruction (one backtrack frame per
// run, not per character); other repeats are unrolled up to their minimum then looped;
// possessive quantifiers are atomic groups. Each alternative gets a guard (the code points
// that can start it) so the matcher skips branches without pushing a choice point, and
// the set of code points that can start a match lets the search skip impossible starts.
// Invariant: the program accepts exactly what the AST describes, in the same priority
// order (leftmost-first, greedy before lazy). Reference: Oniguruma doc/RE.
#include "data/regex.h"

#include <algorithm>
#include <memory>
#include <string>

#include "core/error.h"
#include "data/regex_program.h"

namespace crucible::data {

namespace regex_detail {
namespace {

constexpr std::size_t kMaxInstructions = 1 << 16;

bool nullable(const Node& n) {
  switch (n.kind) {
    case Node::Kind::Class: return false;
    case Node::Kind::Concat:
      return std::all_of(n.kids.begin(), n.kids.end(), [](const Node& k) { return nullable(k); });
    case Node::Kind::Alt:
      return std::any_of(n.kids.begin(), n.kids.end(), [](const Node& k) { return nullable(k); });
    case Node::Kind::Repeat: return n.min == 0 || nullable(n.kids[0]);
    case Node::Kind::Atomic: return nullable(n.kids[0]);
    default: return true;  // Empty, Look, Assert
  }
}

// Adds the classes that can start a match of n; returns whether n can match empty
// (then what follows n can start the match too). Lookaheads are transparent.
bool first_classes(const Node& n, std::vector<std::uint32_t>& out) {
  switch (n.kind) {
    case Node::Kind::Class: out.push_back(n.cls); return false;
    case Node::Kind::Concat:
      for (const Node& k : n.kids)
        if (!first_classes(k, out)) return false;
      return true;
    case Node::Kind::Alt: {
      bool any = false;
      for (const Node& k : n.kids) any |= first_classes(k, out);
      return any;
    }
    case Node::Kind::Repeat: return first_classes(n.kids[0], out) || n.min == 0;
    case Node::Kind::Atomic: return first_classes(n.kids[0], out);
    default: return true;
  }
}

class Compiler {
 public:
  explicit Compiler(Program& p) : p_(p) {}

  void compile(const Node& root) {
    emit(root);
    push({Op::Match});
    // Sub-programs (lookahead and atomic bodies) follow, each ending in Match.
    for (std::size_t i = 0; i < pending_.size(); ++i) {
      const auto [node, inst] = pending_[i];
      p_.code[inst].x = here();
      emit(*node);
      push({Op::Match});
    }
  }

 private:
  std::uint32_t here() const { return static_cast<std::uint32_t>(p_.code.size()); }
  std::uint32_t push(Inst in) {
    if (p_.code.size() >= kMaxInstructions) CRUCIBLE_FAIL("regex '", p_.pattern, "': pattern too large once repeats are unrolled");
    p_.code.push_back(in);
    return here() - 1;
  }

  void emit(const Node& n) {
    switch (n.kind) {
      case Node::Kind::Empty: return;
      case Node::Kind::Class: {
        Inst in{Op::Class};
        in.arg = n.cls;
        push(in);
        return;
      }
      case Node::Kind::Concat:
        for (const Node& k : n.kids) emit(k);
        return;
      case Node::Kind::Alt: {
        std::vector<std::uint32_t> jumps;
        for (std::size_t i = 0; i < n.kids.size(); ++i) {
          if (i + 1 < n.kids.size()) {
            Inst in{Op::Split};
            in.arg = make_guard(n.kids[i]);
            const std::uint32_t split = push(in);
            p_.code[split].x = here();
            emit(n.kids[i]);
            jumps.push_back(push({Op::Jmp}));
            p_.code[split].y = here();
          } else {
            emit(n.kids[i]);
          }
        }
        for (std::uint32_t j : jumps) p_.code[j].x = here();
        return;
      }
      case Node::Kind::Repeat: emit_repeat(n); return;
      case Node::Kind::Look: {
        Inst in{Op::Look};
        in.negate = n.negate;
        pending_.push_back({&n.kids[0], push(in)});
        return;
      }
      case Node::Kind::Atomic: pending_.push_back({&n.kids[0], push({Op::Atomic})}); return;
      case Node::Kind::Assert: {
        Inst in{Op::Assert};
        in.arg = static_cast<std::uint32_t>(n.assert_kind);
        push(in);
        return;
      }
    }
  }

  static Inst unguarded_split() {
    Inst in{Op::Split};
    in.arg = kNoGuard;
    return in;
  }

  // A guard for an alternative that cannot match empty: the classes that can start it.
  std::uint32_t make_guard(const Node& n) {
    std::vector<std::uint32_t> first;
    if (first_classes(n, first)) return kNoGuard;
    Guard g;
    std::sort(first.begin(), first.end());
    first.erase(std::unique(first.begin(), first.end()), first.end());
    for (std::uint32_t c : first) {
      g.ascii[0] |= p_.classes[c].ascii[0];
      g.ascii[1] |= p_.classes[c].ascii[1];
    }
    g.classes = std::move(first);
    p_.guards.push_back(std::move(g));
    return static_cast<std::uint32_t>(p_.guards.size() - 1);
  }

  void emit_repeat(const Node& n) {
    const Node& kid = n.kids[0];
    if (kid.kind == Node::Kind::Class) {
      Inst in{Op::ClassRepeat};
      in.arg = kid.cls;
      in.min = n.min;
      in.max = n.max;
      in.mode = n.mode;
      push(in);
      return;
    }
    if (n.mode == RepeatMode::Possessive) {  // X*+ == (?>X*)
      auto* greedy = new Node(n);
      owned_.emplace_back(greedy);
      greedy->mode = RepeatMode::Greedy;
      pending_.push_back({greedy, push({Op::Atomic})});
      return;
    }
    for (std::uint32_t i = 0; i < n.min; ++i) emit(kid);
    const bool lazy = n.mode == RepeatMode::Lazy;
    if (n.max == kUnbounded) {
      if (nullable(kid))
        CRUCIBLE_FAIL("regex '", p_.pattern, "': an unbounded repeat of a group that can match the empty string is not supported");
      const std::uint32_t loop = push(unguarded_split());
      const std::uint32_t body = here();
      emit(kid);
      Inst back{Op::Jmp};
      back.x = loop;
      push(back);
      p_.code[loop].x = lazy ? here() : body;
      p_.code[loop].y = lazy ? body : here();
      return;
    }
    std::vector<std::uint32_t> splits;  // X{0,k}: k optional copies, each may stop the repeat
    for (std::uint32_t i = n.min; i < n.max; ++i) {
      splits.push_back(push(unguarded_split()));
      const std::uint32_t body = here();
      emit(kid);
      p_.code[splits.back()].x = body;  // temporarily: the body; the exit is patched below
    }
    for (std::uint32_t s : splits) {
      const std::uint32_t body = p_.code[s].x;
      p_.code[s].x = lazy ? here() : body;
      p_.code[s].y = lazy ? body : here();
    }
  }

  Program& p_;
  std::vector<std::pair<const Node*, std::uint32_t>> pending_;
  std::vector<std::unique_ptr<Node>> owned_;
};

}  // namespace

std::shared_ptr<const Program> compile_pattern(std::string_view pattern, bool literal) {
  auto prog = std::make_shared<Program>();
  prog->pattern = std::string(pattern);
  Node root;
  if (literal) {
    CRUCIBLE_CHECK(unicode::utf8_invalid_at(pattern) == std::string_view::npos, "regex literal is not valid UTF-8");
    root.kind = Node::Kind::Concat;
    const auto* p = reinterpret_cast<const unsigned char*>(pattern.data());
    const auto* end = p + pattern.size();
    while (p < end) {
      char32_t cp;
      p += unicode::utf8_decode(p, cp);
      CharClass c;
      ClassItem it;
      it.ranges = {{cp, cp}};
      c.items.push_back(it);
      c.finish();
      prog->classes.push_back(std::move(c));
      Node k;
      k.kind = Node::Kind::Class;
      k.cls = static_cast<std::uint32_t>(prog->classes.size() - 1);
      root.kids.push_back(std::move(k));
    }
  } else {
    root = parse_pattern(pattern, *prog);
  }
  Compiler(*prog).compile(root);
  std::vector<std::uint32_t> first;
  prog->first_any = first_classes(root, first);
  if (!prog->first_any) {
    std::sort(first.begin(), first.end());
    first.erase(std::unique(first.begin(), first.end()), first.end());
    prog->first_classes = first;
    for (std::uint32_t c : first) {
      prog->first_ascii[0] |= prog->classes[c].ascii[0];
      prog->first_ascii[1] |= prog->classes[c].ascii[1];
    }
  }
  return prog;
}

}  // namespace regex_detail

Regex::Regex(std::string_view pattern) : prog_(regex_detail::compile_pattern(pattern, false)) {}

Regex Regex::literal(std::string_view text) { return Regex(regex_detail::compile_pattern(text, true)); }

const std::string& Regex::pattern() const { return prog_->pattern; }

}  // namespace crucible::data
