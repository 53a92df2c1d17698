// core/log.cpp: rank-aware log lines and the progress line (see log.h).
#include "core/log.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <mutex>

namespace crucible {

namespace {
struct LogState {
  LogOptions opts;
  int rank = -1;
  int world = 1;
  std::mutex mu;
};
LogState& state() {
  static LogState s;
  return s;
}
bool this_rank_prints() {
  const LogState& s = state();
  return s.rank <= 0 || s.opts.all_ranks;
}
}  // namespace

void configure_logging(const LogOptions& opts, int rank, int world) {
  LogState& s = state();
  s.opts = opts;
  s.rank = rank;
  s.world = world;
}

bool log_enabled(LogLevel level) {
  return level >= state().opts.level && (this_rank_prints() || level == LogLevel::Error);
}

void log_line(LogLevel level, std::string_view msg) {
  LogState& s = state();
  std::lock_guard lock(s.mu);
  std::string line;
  if (s.world > 1 && (s.opts.all_ranks || s.rank > 0)) line += "[rank " + std::to_string(s.rank) + "] ";
  if (level == LogLevel::Warn) line += "warning: ";
  if (level == LogLevel::Error) line += "error: ";
  line += msg;
  line += '\n';
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  auto t = static_cast<long long>(seconds + 0.5);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", t / 3600, t / 60 % 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", t / 60, t % 60);
  return buf;
}

Progress::Progress(std::string stage, std::int64_t total, double plain_interval_s)
    : stage_(std::move(stage)), total_(total), plain_interval_s_(plain_interval_s),
      tty_(::isatty(STDERR_FILENO) != 0), enabled_(log_enabled(LogLevel::Info)) {}

Progress::~Progress() {
  if (!finished_ && tty_ && enabled_) std::fputs("\n", stderr);
}

std::string Progress::render() const {
  const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(step_) / elapsed : 0.0;
  char buf[160];
  std::string line = stage_;
  if (total_ > 0) {
    std::snprintf(buf, sizeof buf, "  %lld/%lld  %3.0f%%", static_cast<long long>(step_),
                  static_cast<long long>(total_), 100.0 * static_cast<double>(step_) / static_cast<double>(total_));
  } else {
    std::snprintf(buf, sizeof buf, "  %lld", static_cast<long long>(step_));
  }
  line += buf;
  if (rate >= 1.0) std::snprintf(buf, sizeof buf, "  %.2f step/s", rate);
  else if (rate > 0) std::snprintf(buf, sizeof buf, "  %.2f s/step", 1.0 / rate);
  else buf[0] = 0;
  line += buf;
  if (total_ > 0 && rate > 0 && step_ < total_)
    line += "  ETA " + format_duration(static_cast<double>(total_ - step_) / rate);
  else if (step_ >= total_ && total_ > 0)
    line += "  in " + format_duration(elapsed);
  for (const auto& [key, value] : metrics_) {
    std::snprintf(buf, sizeof buf, "  %s %.4g", key.c_str(), value);
    line += buf;
  }
  return line;
}

void Progress::update(std::int64_t step, std::vector<std::pair<std::string, double>> metrics) {
  step_ = step;
  if (!metrics.empty()) metrics_ = std::move(metrics);
  if (!enabled_) return;
  const auto now = Clock::now();
  if (tty_) {
    if (now - last_print_ < std::chrono::milliseconds(100) && step_ < total_) return;
    last_print_ = now;
    std::string line = "\r\033[2K" + render();
    std::fputs(line.c_str(), stderr);
    std::fflush(stderr);
    return;
  }
  if (last_print_ != Clock::time_point{} &&
      std::chrono::duration<double>(now - last_print_).count() < plain_interval_s_)
    return;
  last_print_ = now;
  log_line(LogLevel::Info, render());
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (!enabled_) return;
  if (tty_) {
    std::string line = "\r\033[2K" + render() + "\n";
    std::fputs(line.c_str(), stderr);
    std::fflush(stderr);
  } else {
    log_line(LogLevel::Info, render());
  }
}

}  // namespace crucible
