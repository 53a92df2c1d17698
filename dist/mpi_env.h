// dist/mpi_env.h: MPI bootstrap.
//
// `mpirun -np N crucible ...` (or srun) starts N processes; MpiEnv initializes MPI
// in each and knows rank, world size and the local rank on the node (which picks
// the GPU). A plain `crucible ...` is one process: MPI is not initialized at all,
// so the command works on machines where no launcher is present.
//
// Failure policy (DESIGN.md §6): a rank that throws reports its error and calls
// MPI_Abort, which ends every rank; nothing hangs in a collective.
#pragma once

#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"

namespace crucible::dist {

// True when this process was started by an MPI launcher (Open MPI, MPICH/PMI, Slurm).
bool launched_by_mpi();

class MpiEnv {
 public:
  // Initializes MPI when launched_by_mpi() (or when force is true).
  explicit MpiEnv(int* argc, char*** argv, bool force = false);
  ~MpiEnv();  // MPI_Finalize when initialized here
  MpiEnv(const MpiEnv&) = delete;
  MpiEnv& operator=(const MpiEnv&) = delete;

  bool active() const { return active_; }  // MPI is initialized
  int rank() const { return rank_; }
  int world() const { return world_; }
  int local_rank() const { return local_rank_; }
  int local_world() const { return local_world_; }
  const std::string& host() const { return host_; }

  // Ends the whole job after an error on this rank (MPI_Abort); no-op when not active.
  [[noreturn]] void abort(int code) const;
  void barrier() const;
  // Gathers one string from every rank on every rank (small messages, e.g. host names).
  std::vector<std::string> all_gather_strings(const std::string& mine) const;

 private:
  bool active_ = false;
  int rank_ = 0;
  int world_ = 1;
  int local_rank_ = 0;
  int local_world_ = 1;
  std::string host_;
};

// The device this rank runs on when the run asks for `requested` (run.device):
//   cpu                   -> the CPU;
//   cuda / cuda:N, 1 rank -> as asked (N picks the GPU of a single-process run);
//   cuda*, several ranks  -> cuda:(local_rank % visible GPUs), whatever N: one GPU per
//                            rank when a node runs as many ranks as it has GPUs, and
//                            cuda:0 when the launcher shows each rank only its own GPU
//                            (CUDA_VISIBLE_DEVICES per task, e.g. srun --gpus-per-task=1).
// A CUDA request fails with a clear error in a build without CUDA or on a host with no
// visible GPU.
Device rank_device(const MpiEnv& env, Device requested);

}  // namespace crucible::dist

// CHECK_MPI(call): throws crucible::Error naming the call and MPI's error string.
#define CHECK_MPI(call)                                                    \
  do {                                                                     \
    int crucible_mpi_rc_ = (call);                                         \
    if (crucible_mpi_rc_ != 0)                                             \
      ::crucible::dist::detail::mpi_fail(#call, crucible_mpi_rc_, __FILE__, __LINE__); \
  } while (0)

namespace crucible::dist::detail {
[[noreturn]] void mpi_fail(const char* call, int rc, const char* file, int line);
}
