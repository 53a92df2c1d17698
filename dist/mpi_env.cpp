// dist/mpi_env.cpp: MPI initialization, ranks, abort-on-error.
#include "dist/mpi_env.h"

#include <mpi.h>
#include <unistd.h>

#include <cstdlib>

#include "core/device_memory.h"

namespace crucible::dist {

namespace detail {
void mpi_fail(const char* call, int rc, const char* file, int line) {
  char text[MPI_MAX_ERROR_STRING] = "unknown error";
  int len = 0, initialized = 0;
  // MPI_Error_string is only legal once MPI is up (Open MPI aborts otherwise).
  MPI_Initialized(&initialized);
  if (initialized && MPI_Error_string(rc, text, &len) != MPI_SUCCESS) text[0] = 0;
  ::crucible::fail(::crucible::detail::concat("MPI call failed: ", call, ": ", text, " (code ", rc, ")"),
                   file, line);
}
}  // namespace detail

bool launched_by_mpi() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK",
                          "MPI_LOCALNRANKS"})
    if (std::getenv(var)) return true;
  // Slurm without mpirun: srun --mpi=pmix sets PMIX_RANK (above); plain srun sets
  // SLURM_PROCID only, and then every task is a single-process job.
  return false;
}

MpiEnv::MpiEnv(int* argc, char*** argv, bool force) {
  char name[256] = {0};
  if (::gethostname(name, sizeof name - 1) == 0) host_ = name;
  if (!force && !launched_by_mpi()) return;
  int initialized = 0;
  CHECK_MPI(MPI_Initialized(&initialized));
  if (!initialized) {
    int provided = 0;
    CHECK_MPI(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
  }
  active_ = true;
  // Errors return codes (checked by CHECK_MPI) instead of aborting silently.
  CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  CHECK_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
  CHECK_MPI(MPI_Comm_size(MPI_COMM_WORLD, &world_));
  MPI_Comm local;
  CHECK_MPI(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local));
  CHECK_MPI(MPI_Comm_rank(local, &local_rank_));
  CHECK_MPI(MPI_Comm_size(local, &local_world_));
  MPI_Comm_free(&local);
  set_error_rank(world_ > 1 ? rank_ : -1);
}

MpiEnv::~MpiEnv() {
  if (!active_) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void MpiEnv::abort(int code) const {
  if (active_ && world_ > 1) MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

void MpiEnv::barrier() const {
  if (active_) CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
}

std::vector<std::string> MpiEnv::all_gather_strings(const std::string& mine) const {
  if (!active_ || world_ == 1) return {mine};
  int len = static_cast<int>(mine.size());
  std::vector<int> lens(world_);
  CHECK_MPI(MPI_Allgather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, MPI_COMM_WORLD));
  std::vector<int> displs(world_, 0);
  int total = 0;
  for (int r = 0; r < world_; ++r) displs[r] = total, total += lens[r];
  std::string all(static_cast<std::size_t>(total), '\0');
  CHECK_MPI(MPI_Allgatherv(mine.data(), len, MPI_CHAR, all.data(), lens.data(), displs.data(),
                           MPI_CHAR, MPI_COMM_WORLD));
  std::vector<std::string> out;
  for (int r = 0; r < world_; ++r) out.push_back(all.substr(displs[r], lens[r]));
  return out;
}

Device rank_device(const MpiEnv& env, Device requested) {
  if (requested.is_cpu()) return requested;
  CRUCIBLE_USER_CHECK(cuda_compiled(), "run.device is ", requested.str(),
                      " but this crucible was built without CUDA (configure with "
                      "-DCRUCIBLE_CUDA=ON on a machine with nvcc), or use run.device = \"cpu\"");
  const int visible = cuda_device_count();
  CRUCIBLE_USER_CHECK(visible > 0, "run.device is ", requested.str(), " but host ", env.host(),
                      " has no visible CUDA device (check nvidia-smi and CUDA_VISIBLE_DEVICES)");
  if (!env.active() || env.world() == 1) return requested;
  return Device::cuda(env.local_rank() % visible);
}

}  // namespace crucible::dist
