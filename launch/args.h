// launch/args.h: a small command-line parser for the subcommands.
//
// Each subcommand declares its positionals, flags and options once; --help text,
// "missing argument" and "unknown option (did you mean ...)" errors come from that
// one declaration. Usage errors throw UsageError (exit code 2).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace crucible::launch {

class UsageError : public Error {
 public:
  using Error::Error;
};

class ArgParser {
 public:
  ArgParser(std::string command, std::string summary);

  ArgParser& positional(std::string name, std::string* out, std::string help, bool required = true);
  ArgParser& flag(std::string name, bool* out, std::string help);
  ArgParser& option(std::string name, std::string* out, std::string metavar, std::string help);
  // Repeatable option (--set a=b --set c=d).
  ArgParser& multi(std::string name, std::vector<std::string>* out, std::string metavar, std::string help);
  ArgParser& epilog(std::string text);

  // Returns false when --help was given (help already printed to stdout).
  bool parse(const std::vector<std::string>& args);
  std::string help() const;

 private:
  struct Opt {
    std::string name, metavar, help;
    bool* flag = nullptr;
    std::string* value = nullptr;
    std::vector<std::string>* values = nullptr;
  };
  struct Pos {
    std::string name, help;
    std::string* out;
    bool required;
  };
  std::string command_, summary_, epilog_;
  std::vector<Opt> opts_;
  std::vector<Pos> pos_;
};

}  // namespace crucible::launch
