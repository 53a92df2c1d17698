// launch/args.cpp: see args.h.
#include "launch/args.h"

#include <cctype>
#include <cstdio>

#include "launch/config_fields.h"  // edit_distance

namespace crucible::launch {

ArgParser::ArgParser(std::string command, std::string summary)
    : command_(std::move(command)), summary_(std::move(summary)) {}

ArgParser& ArgParser::positional(std::string name, std::string* out, std::string help, bool required) {
  pos_.push_back({std::move(name), std::move(help), out, required});
  return *this;
}
ArgParser& ArgParser::flag(std::string name, bool* out, std::string help) {
  opts_.push_back({std::move(name), "", std::move(help), out, nullptr, nullptr});
  return *this;
}
ArgParser& ArgParser::option(std::string name, std::string* out, std::string metavar, std::string help) {
  opts_.push_back({std::move(name), std::move(metavar), std::move(help), nullptr, out, nullptr});
  return *this;
}
ArgParser& ArgParser::multi(std::string name, std::vector<std::string>* out, std::string metavar,
                            std::string help) {
  opts_.push_back({std::move(name), std::move(metavar), std::move(help), nullptr, nullptr, out});
  return *this;
}
ArgParser& ArgParser::epilog(std::string text) {
  epilog_ = std::move(text);
  return *this;
}

std::string ArgParser::help() const {
  std::string s = "usage: crucible " + command_;
  for (const Pos& p : pos_) s += p.required ? " " + p.name : " [" + p.name + "]";
  if (!opts_.empty()) s += " [options]";
  s += "\n\n" + summary_ + "\n";
  auto row = [&](const std::string& left, const std::string& right) {
    char buf[512];
    std::snprintf(buf, sizeof buf, "  %-26s %s\n", left.c_str(), right.c_str());
    s += buf;
  };
  if (!pos_.empty()) {
    s += "\narguments:\n";
    for (const Pos& p : pos_) row(p.name, p.help);
  }
  s += "\noptions:\n";
  for (const Opt& o : opts_) row(o.metavar.empty() ? o.name : o.name + " " + o.metavar, o.help);
  row("-h, --help", "show this help");
  if (!epilog_.empty()) s += "\n" + epilog_ + "\n";
  return s;
}

bool ArgParser::parse(const std::vector<std::string>& args) {
  std::size_t next_pos = 0;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      std::fputs(help().c_str(), stdout);
      return false;
    }
    if (a.size() > 1 && a[0] == '-' && !(a.size() > 1 && (std::isdigit(static_cast<unsigned char>(a[1])) || a[1] == '.'))) {
      std::string name = a, inline_value;
      bool has_inline = false;
      if (auto eq = a.find('='); eq != std::string::npos && a.rfind("--", 0) == 0) {
        name = a.substr(0, eq);
        inline_value = a.substr(eq + 1);
        has_inline = true;
      }
      const Opt* found = nullptr;
      for (const Opt& o : opts_)
        if (o.name == name) found = &o;
      if (!found) {
        std::string best;
        std::size_t best_d = 3;
        for (const Opt& o : opts_)
          if (std::size_t d = edit_distance(name, o.name); d < best_d) best_d = d, best = o.name;
        throw UsageError("crucible " + command_ + ": unknown option '" + name + "'" +
                         (best.empty() ? "" : " (did you mean '" + best + "'?)") +
                         "; see 'crucible " + command_ + " --help'");
      }
      if (found->flag) {
        if (has_inline)
          throw UsageError("crucible " + command_ + ": " + name + " takes no value");
        *found->flag = true;
        continue;
      }
      std::string value;
      if (has_inline) {
        value = inline_value;
      } else {
        if (i + 1 >= args.size())
          throw UsageError("crucible " + command_ + ": " + name + " needs a value (" + found->metavar + ")");
        value = args[++i];
      }
      if (found->value) *found->value = value;
      else found->values->push_back(value);
      continue;
    }
    if (next_pos >= pos_.size())
      throw UsageError("crucible " + command_ + ": unexpected argument '" + a + "'; see 'crucible " +
                       command_ + " --help'");
    *pos_[next_pos++].out = a;
  }
  for (std::size_t p = next_pos; p < pos_.size(); ++p)
    if (pos_[p].required)
      throw UsageError("crucible " + command_ + ": missing " + pos_[p].name + "; see 'crucible " +
                       command_ + " --help'");
  return true;
}

}  // namespace crucible::launch
