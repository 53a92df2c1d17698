// core/log.h: logging and the progress line.
//
// Rank 0 prints by default; LogOptions::all_ranks lets every rank print, each line
// prefixed with "[rank r]". Messages go to stderr (stdout stays for results such as
// `--json` output). The progress line redraws in place on a TTY and prints plain
// lines otherwise (at most one per `plain_interval_s`), so logs in files and CI
// stay readable.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"  // detail::concat

namespace crucible {

enum class LogLevel : std::uint8_t { Debug, Info, Warn, Error };

struct LogOptions {
  LogLevel level = LogLevel::Info;
  bool all_ranks = false;  // every rank prints (prefixed); default rank 0 only
};

// Set once at start-up (launch/) after MPI is up; rank -1 = single process.
void configure_logging(const LogOptions& opts, int rank, int world);
bool log_enabled(LogLevel level);
void log_line(LogLevel level, std::string_view msg);


// A progress line: "sft  120/400  30%  12.5 step/s  ETA 0:22  loss 1.234  acc 0.51".
class Progress {
 public:
  Progress(std::string stage, std::int64_t total, double plain_interval_s = 10.0);
  ~Progress();
  // Sets the step (1-based count of finished steps) and key metrics, redraws if due.
  void update(std::int64_t step, std::vector<std::pair<std::string, double>> metrics = {});
  // Prints the final line (always) and leaves the TTY line finished.
  void finish();
  // The line as it would be printed now (for tests).
  std::string render() const;

 private:
  using Clock = std::chrono::steady_clock;
  std::string stage_;
  std::int64_t total_;
  std::int64_t step_ = 0;
  std::vector<std::pair<std::string, double>> metrics_;
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_print_{};
  double plain_interval_s_;
  bool tty_;
  bool enabled_;
  bool finished_ = false;
};

std::string format_duration(double seconds);  // "1:02:03", "2:05"

template <typename... Args>
void log(LogLevel level, const Args&... args) {
  if (log_enabled(level)) log_line(level, detail::concat(args...));
}
template <typename... Args>
void log_info(const Args&... args) { log(LogLevel::Info, args...); }
template <typename... Args>
void log_warn(const Args&... args) { log(LogLevel::Warn, args...); }

}  // namespace crucible
