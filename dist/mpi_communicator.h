// dist/mpi_communicator.h: the Communicator over MPI, for CPU buffers.
//
// Deterministic mode (the default, see dist/communicator.h) never calls an MPI
// reduction: the buffer is cut into pieces of at most chunk_elems elements; in each
// piece rank r owns a balanced block (about chunk_elems / world elements), receives
// every rank's copy of it by point-to-point messages, folds them in rank order
// 0..world-1, and sends the result back to every rank (reduce_scatter skips that last
// step). Bandwidth is that of a ring all-reduce: each rank sends and receives
// 2 (world-1)/world of the buffer. Every received message's size is checked, so
// ranks that disagree on a collective's size get an error (and the job ends) instead
// of a silent mix-up.
// Native mode calls MPI_Allreduce / MPI_Reduce_scatter_block (BF16/F16 through an
// FP32 copy, since MPI has no 16-bit float type). Data movement uses MPI_Allgather,
// MPI_Bcast and MPI_Alltoallv in both modes.
//
// Not thread-safe: one thread calls (MPI is initialized MPI_THREAD_FUNNELED).
// NOTE: MPI counts are int. Deterministic reductions, all_reduce and broadcast chunk
// their messages; all_gather (elements per rank), native reduce_scatter (elements per
// rank) and all_to_all_v (rows and row offsets) check that theirs fit and fail loudly.
#pragma once

#include <mpi.h>

#include <cstddef>
#include <vector>

#include "dist/communicator.h"

namespace crucible::dist {

class MpiEnv;

class MpiCommunicator final : public Communicator {
 public:
  // MPI_COMM_WORLD of an active MpiEnv (launched by mpirun).
  explicit MpiCommunicator(const MpiEnv& env, CommunicatorConfig config = {});
  // Any MPI communicator (e.g. an expert-parallel group from MPI_Comm_split). Both
  // constructors duplicate it, so this communicator's messages never match another
  // library's, and set MPI_ERRORS_RETURN on the duplicate (errors throw, see CHECK_MPI).
  explicit MpiCommunicator(MPI_Comm comm, CommunicatorConfig config = {});
  ~MpiCommunicator() override;

  int rank() const override { return rank_; }
  int world() const override { return world_; }
  std::string_view backend() const override { return "mpi"; }
  bool supports_device(Device device) const override { return device.is_cpu(); }
  MPI_Comm comm() const { return comm_; }

 protected:
  void do_all_reduce(Tensor& t, ReduceOp op, const Stream& stream) override;
  void do_reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op, const Stream& stream) override;
  void do_all_gather(const Tensor& in, Tensor& out, const Stream& stream) override;
  void do_broadcast(Tensor& t, int root, const Stream& stream) override;
  void do_all_to_all_v(const Tensor& in, std::span<const std::int64_t> send_counts, Tensor& out,
                       std::span<const std::int64_t> recv_counts, const Stream& stream) override;
  void do_barrier() override;

 private:
  void ordered_all_reduce(Tensor& t, ReduceOp op);
  void ordered_reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op);
  void native_all_reduce(Tensor& t, ReduceOp op);
  void native_reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op);
  std::byte* scratch(std::size_t bytes);  // grows, never shrinks; one per communicator

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int world_ = 1;
  std::vector<std::byte> scratch_;
};

}  // namespace crucible::dist
