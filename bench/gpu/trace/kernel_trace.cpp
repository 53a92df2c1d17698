// bench/gpu/trace/kernel_trace.cpp: a per-kernel time table for any CUDA program, for
// machines without Nsight Systems (the device image has none).
//
//   LD_PRELOAD=libcrucible_kernel_trace.so [CRUCIBLE_TRACE_DIV=N] [CRUCIBLE_TRACE_TOP=K] prog ...
//
// At load it asks CUPTI for an activity record of every kernel, memcpy and memset; at
// exit it prints to stderr one row per kernel name (demangled, template arguments kept,
// parameters dropped): total GPU time, calls, time per call and share of the whole,
// sorted by total. Where the program marks capture ranges (cudaProfilerStart/Stop, as
// bench::median_wall_ms and tools/hf_peer.py do around their timed calls), only records
// that start inside one count, and the table also gives the ranges' wall time, so that
// GPU time / wall time shows how busy the GPU was. CRUCIBLE_TRACE_DIV divides the totals
// and call counts (by the number of timed steps, so that rows read "per step"). A second
// table charges the GPU's idle time inside the ranges to the record that ends each gap.
// Concurrent kernels each count their own duration, so the sum can exceed wall time.
#include <cupti.h>
#include <cupti_driver_cbid.h>
#include <cxxabi.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace {

constexpr std::size_t kBufferBytes = 8u << 20;

struct Row {
  double ns = 0;
  std::uint64_t calls = 0;
};

struct Record {
  std::string name;
  std::uint64_t start, end;
};

// Leaked on purpose: used from exit handlers, after static destructors may have run.
std::mutex& g_mutex = *new std::mutex;
std::vector<Record>& g_records = *new std::vector<Record>;
std::vector<std::pair<std::uint64_t, std::uint64_t>>& g_ranges = *new std::vector<std::pair<std::uint64_t, std::uint64_t>>;
bool g_in_range = false;
bool g_printed = false;

void check(CUptiResult r, const char* what) {
  if (r == CUPTI_SUCCESS) return;
  const char* msg = nullptr;
  cuptiGetResultString(r, &msg);
  std::fprintf(stderr, "kernel_trace: %s failed: %s\n", what, msg ? msg : "?");
}

// The demangled name without its parameter list: "ns::kernel<T, 4>".
std::string short_name(const char* mangled) {
  if (mangled == nullptr) return "(unnamed)";
  int status = 0;
  char* d = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string name = (status == 0 && d) ? d : mangled;
  std::free(d);
  const std::string anon = "(anonymous namespace)::";
  for (std::size_t at; (at = name.find(anon)) != std::string::npos;) name.erase(at, anon.size());
  int depth = 0;  // cut at the first '(' outside template brackets
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (name[i] == '<') ++depth;
    if (name[i] == '>') --depth;
    if (name[i] == '(' && depth == 0 && i > 0) return name.substr(0, i);
  }
  return name;
}

void CUPTIAPI buffer_requested(std::uint8_t** buffer, std::size_t* size, std::size_t* max_records) {
  *buffer = static_cast<std::uint8_t*>(std::aligned_alloc(8, kBufferBytes));
  *size = *buffer ? kBufferBytes : 0;
  *max_records = 0;
}

void CUPTIAPI buffer_completed(CUcontext, std::uint32_t, std::uint8_t* buffer, std::size_t, std::size_t valid) {
  CUpti_Activity* record = nullptr;
  std::lock_guard<std::mutex> lock(g_mutex);
  while (cuptiActivityGetNextRecord(buffer, valid, &record) == CUPTI_SUCCESS) {
    switch (record->kind) {
      case CUPTI_ACTIVITY_KIND_KERNEL:
      case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL: {
        const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(record);
        g_records.push_back({short_name(k->name), k->start, k->end});
        break;
      }
      case CUPTI_ACTIVITY_KIND_MEMCPY: {
        const auto* m = reinterpret_cast<const CUpti_ActivityMemcpy6*>(record);
        static const char* kinds[] = {"?", "HtoD", "DtoH", "HtoA", "AtoH", "AtoA", "AtoD", "DtoA", "DtoD", "HtoH", "PtoP"};
        const unsigned kind = m->copyKind < 11 ? m->copyKind : 0;
        g_records.push_back({std::string("[memcpy ") + kinds[kind] + "]", m->start, m->end});
        break;
      }
      case CUPTI_ACTIVITY_KIND_MEMSET: {
        const auto* m = reinterpret_cast<const CUpti_ActivityMemset4*>(record);
        g_records.push_back({"[memset]", m->start, m->end});
        break;
      }
      default:
        break;
    }
  }
  std::free(buffer);
}

// Where the GPU idles inside the capture ranges: every interval in which no counted
// record runs, charged to the record that ends it (the work the GPU waited for, usually
// behind a host synchronization or a slow launch), summed by that record's name.
template <typename Counted>
void print_gaps(Counted counted, double div, std::size_t top) {
  if (g_ranges.empty()) return;
  std::vector<const Record*> in;
  for (const Record& r : g_records)
    if (counted(r)) in.push_back(&r);
  std::sort(in.begin(), in.end(), [](const Record* a, const Record* b) { return a->start < b->start; });
  std::map<std::string, Row> gaps;
  double idle = 0;
  std::uint64_t busy_until = 0;
  for (const Record* r : in) {
    const bool range_start = std::any_of(g_ranges.begin(), g_ranges.end(), [&](const auto& g) {
      return r->start >= g.first && busy_until < g.first;  // the first record of a range: no gap
    });
    if (busy_until != 0 && r->start > busy_until && !range_start) {
      const double gap = static_cast<double>(r->start - busy_until);
      idle += gap;
      Row& row = gaps[r->name];
      row.ns += gap;
      ++row.calls;
    }
    busy_until = std::max(busy_until, r->end);
  }
  std::vector<std::pair<std::string, Row>> sorted(gaps.begin(), gaps.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second.ns > b.second.ns; });
  std::fprintf(stderr, "idle GPU between records: %.3f ms; by the record that ends the gap:\n", idle / div * 1e-6);
  std::fprintf(stderr, "%10s %9s %8s  %s\n", "ms", "gaps", "us/gap", "next record");
  for (std::size_t i = 0; i < sorted.size() && i < std::min<std::size_t>(top, 15); ++i) {
    const auto& [name, r] = sorted[i];
    std::fprintf(stderr, "%10.3f %9.1f %8.1f  %.110s\n", r.ns / div * 1e-6, static_cast<double>(r.calls) / div,
                 r.ns / static_cast<double>(r.calls) * 1e-3, name.c_str());
  }
}

void print_table() {
  cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_printed) return;
  g_printed = true;
  const char* div_env = std::getenv("CRUCIBLE_TRACE_DIV");
  const char* top_env = std::getenv("CRUCIBLE_TRACE_TOP");
  const double div = div_env ? std::max(1.0, std::atof(div_env)) : 1.0;
  const std::size_t top = top_env ? static_cast<std::size_t>(std::atol(top_env)) : 40;
  if (g_in_range) g_ranges.back().second = UINT64_MAX;  // a range never stopped: to the end
  auto counted = [](const Record& r) {
    if (g_ranges.empty()) return true;
    for (const auto& [b, e] : g_ranges)
      if (r.start >= b && r.start < e) return true;
    return false;
  };
  std::map<std::string, Row> rows;
  for (const Record& r : g_records)
    if (counted(r)) {
      Row& row = rows[r.name];
      row.ns += static_cast<double>(r.end - r.start);
      ++row.calls;
    }
  std::vector<std::pair<std::string, Row>> sorted(rows.begin(), rows.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second.ns > b.second.ns; });
  double total = 0;
  for (const auto& [name, r] : sorted) total += r.ns;
  double wall = 0;
  for (const auto& [b, e] : g_ranges)
    if (e != UINT64_MAX) wall += static_cast<double>(e - b);
  std::fprintf(stderr, "kernel trace%s: %.3f ms of GPU time in %zu kinds", div > 1 ? " (per 1/DIV)" : "",
               total / div * 1e-6, sorted.size());
  if (!g_ranges.empty())
    std::fprintf(stderr, ", in %zu capture ranges of %.3f ms wall", g_ranges.size(), wall / div * 1e-6);
  std::fprintf(stderr, "\n");
  std::fprintf(stderr, "%10s %5s %9s %8s  %s\n", "ms", "%", "calls", "us/call", "kernel");
  for (std::size_t i = 0; i < sorted.size() && i < top; ++i) {
    const auto& [name, r] = sorted[i];
    std::fprintf(stderr, "%10.3f %5.1f %9.1f %8.1f  %.110s\n", r.ns / div * 1e-6, 100.0 * r.ns / total,
                 static_cast<double>(r.calls) / div, r.ns / static_cast<double>(r.calls) * 1e-3, name.c_str());
  }
  print_gaps(counted, div, top);
}

// Capture ranges in CUPTI's clock, the activity records' clock: from the exit of
// cuProfilerStart to the entry of cuProfilerStop (callers synchronize around them).
void CUPTIAPI on_callback(void*, CUpti_CallbackDomain domain, CUpti_CallbackId id, const void* data) {
  if (domain == CUPTI_CB_DOMAIN_RESOURCE && id == CUPTI_CBID_RESOURCE_CONTEXT_DESTROY_STARTING) {
    cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
    return;
  }
  if (domain != CUPTI_CB_DOMAIN_DRIVER_API) return;
  const auto* info = static_cast<const CUpti_CallbackData*>(data);
  std::uint64_t now = 0;
  cuptiGetTimestamp(&now);
  std::lock_guard<std::mutex> lock(g_mutex);
  if (id == CUPTI_DRIVER_TRACE_CBID_cuProfilerStart && info->callbackSite == CUPTI_API_EXIT && !g_in_range) {
    g_ranges.emplace_back(now, UINT64_MAX);
    g_in_range = true;
  } else if (id == CUPTI_DRIVER_TRACE_CBID_cuProfilerStop && info->callbackSite == CUPTI_API_ENTER && g_in_range) {
    g_ranges.back().second = now;
    g_in_range = false;
  }
}

CUpti_SubscriberHandle g_subscriber;

__attribute__((constructor)) void start_trace() {
  check(cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed), "cuptiActivityRegisterCallbacks");
  check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "enable kernels");
  check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMCPY), "enable memcpy");
  check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMSET), "enable memset");
  check(cuptiSubscribe(&g_subscriber, on_callback, nullptr), "cuptiSubscribe");
  check(cuptiEnableCallback(1, g_subscriber, CUPTI_CB_DOMAIN_RESOURCE, CUPTI_CBID_RESOURCE_CONTEXT_DESTROY_STARTING),
        "context-destroy callback");
  check(cuptiEnableCallback(1, g_subscriber, CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuProfilerStart),
        "cuProfilerStart callback");
  check(cuptiEnableCallback(1, g_subscriber, CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuProfilerStop),
        "cuProfilerStop callback");
  std::atexit(print_table);  // registered before the CUDA runtime's: runs after its teardown
}

}  // namespace
