// core/profile.cpp: see core/profile.h.
#include "core/profile.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#ifdef CRUCIBLE_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace crucible::profile {
namespace {

struct Total {
  double ms = 0;
  long calls = 0;
};

std::mutex& lock() {
  static std::mutex m;
  return m;
}
std::map<std::string, Total>& totals() {
  static std::map<std::string, Total> t;
  return t;
}

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Waits for all device work, so that a scope's time is its own work's.
void sync_device() {
#ifdef CRUCIBLE_WITH_CUDA
  int n = 0;
  if (cudaGetDeviceCount(&n) == cudaSuccess && n > 0) (void)cudaDeviceSynchronize();
#endif
}

}  // namespace

bool enabled() {
  static const bool on = [] {
    const char* v = std::getenv("CRUCIBLE_PROFILE");
    return v && *v && std::strcmp(v, "0") != 0;
  }();
  return on;
}

Scope::Scope(const char* name) : name_(enabled() ? name : nullptr) {
  if (!name_) return;
  sync_device();
  t0_ = now_ms();
}

Scope::~Scope() {
  if (!name_) return;
  sync_device();
  const double ms = now_ms() - t0_;
  std::lock_guard<std::mutex> g(lock());
  Total& t = totals()[name_];
  t.ms += ms;
  ++t.calls;
}

std::string report() {
  std::lock_guard<std::mutex> g(lock());
  std::vector<std::pair<std::string, Total>> rows(totals().begin(), totals().end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
  std::string out = "scope                              total ms    calls   ms/call\n";
  char line[160];
  for (const auto& [name, t] : rows) {
    std::snprintf(line, sizeof line, "%-32s %11.2f %8ld %9.3f\n", name.c_str(), t.ms, t.calls,
                  t.calls ? t.ms / static_cast<double>(t.calls) : 0.0);
    out += line;
  }
  return out;
}

void reset() {
  std::lock_guard<std::mutex> g(lock());
  totals().clear();
}

}  // namespace crucible::profile
