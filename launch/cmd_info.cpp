// launch/cmd_info.cpp: `crucible info`: build features, devices, MPI ranks.
#include <cstdio>
#include <thread>

#include "core/device_memory.h"
#include "core/dtype.h"
#include "core/json.h"
#include "launch/args.h"
#include "launch/commands.h"

#ifndef CRUCIBLE_VERSION
#define CRUCIBLE_VERSION "0.0.0"
#endif

namespace crucible::launch {

int cmd_info(const CommandContext& ctx, const std::vector<std::string>& args) {
  bool as_json = false;
  ArgParser p("info", "Print the build (CUDA compiled or not), visible devices and the MPI layout.\n"
                      "Under mpirun every rank reports its rank, local rank and host.");
  p.flag("--json", &as_json, "print one JSON object");
  if (!p.parse(args)) return 0;
  const auto& mpi = ctx.mpi;
  const int gpus = cuda_device_count();
  const std::string mine = std::to_string(mpi.rank()) + " " + std::to_string(mpi.local_rank()) +
                           " " + mpi.host() + " " + std::to_string(gpus);
  const auto all = mpi.all_gather_strings(mine);
  if (mpi.rank() != 0) return 0;
  if (as_json) {
    json::Value j = json::Value::object();
    j.set("version", CRUCIBLE_VERSION);
    j.set("cuda_compiled", cuda_compiled());
    j.set("cuda_devices", gpus);
    j.set("cpu_threads", static_cast<std::int64_t>(std::thread::hardware_concurrency()));
    j.set("mpi", mpi.active());
    j.set("world", mpi.world());
    json::Value ranks = json::Value::array();
    for (const std::string& line : all) {
      json::Value r = json::Value::object();
      int rank = 0, local = 0, g = 0;
      char host[256] = {0};
      std::sscanf(line.c_str(), "%d %d %255s %d", &rank, &local, host, &g);
      r.set("rank", rank);
      r.set("local_rank", local);
      r.set("host", std::string(host));
      r.set("cuda_devices", g);
      ranks.push_back(r);
    }
    j.set("ranks", ranks);
    std::printf("%s\n", json::dump(j, 2).c_str());
    return 0;
  }
  std::printf("crucible %s\n", CRUCIBLE_VERSION);
  std::printf("cuda backend: %s, cuda devices: %d, cpu threads: %u\n",
              cuda_compiled() ? "compiled" : "not compiled", gpus, std::thread::hardware_concurrency());
  std::printf("mpi: %s, world %d\n", mpi.active() ? "initialized" : "single process", mpi.world());
  std::printf("%-6s %-10s %-20s %s\n", "rank", "local", "host", "cuda devices");
  for (const std::string& line : all) {
    int rank = 0, local = 0, g = 0;
    char host[256] = {0};
    std::sscanf(line.c_str(), "%d %d %255s %d", &rank, &local, host, &g);
    std::printf("%-6d %-10d %-20s %d\n", rank, local, host, g);
  }
  return 0;
}

}  // namespace crucible::launch
