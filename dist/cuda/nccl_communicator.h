// dist/cuda/nccl_communicator.h: the Communicator over NCCL, for the tensors of one
// GPU per rank (CUDA builds only; make_communicator picks it for run.device = cuda
// with more than one rank).
//
// Bootstrap: rank 0 of an MPI communicator makes an ncclUniqueId and broadcasts it
// over MPI; every rank calls ncclCommInitRank on its GPU. Which GPU: the caller says
// (rank_device() in dist/mpi_env.h: local rank modulo the visible devices). Before
// NCCL starts, the ranks compare (host, PCI bus id) over MPI, so two ranks on one GPU
// get a clear error instead of NCCL's. Without MPI (a plain process) the communicator
// has one rank and needs no bootstrap.
//
// Streams: every op is enqueued on the Stream it is given (Stream::handle(); nullptr
// is the legacy default stream, where crucible allocates and frees tensors: see
// core/device_memory.h) and returns without waiting; the tensors must stay alive
// until that stream has run it, as for any kernel. crucible's streams are blocking,
// so the scratch buffer below, allocated and freed on the legacy stream, is ordered
// with every op. The host helpers (all_reduce_f64, ...) and barrier() wait.
//
// Determinism (the ReductionMode of dist/communicator.h):
// - Deterministic (the default) never uses an NCCL reduction. As the MPI backend does,
//   each piece of chunk_elems elements is cut into one block per rank; grouped
//   ncclSend/ncclRecv bring every rank's copy of block r to rank r, which folds them in
//   rank order 0..world-1 with a CUDA kernel (dist/cuda/rank_fold_cuda.h, the twin of
//   detail::fold_in_rank_order), and the folded blocks are sent back to every rank
//   (reduce_scatter skips that step). Guaranteed: the bits equal
//   reduce_in_rank_order() of the ranks' inputs, so they are the same on every rank,
//   on every run, for any world topology, chunk_elems, GPU model or NCCL version, and
//   the same as the MPI backend's (except the sign and payload of NaNs). Traffic is a
//   ring all-reduce's, 2 (world-1)/world of the buffer per rank, but in 2 x world
//   messages per piece rather than NCCL's pipelined ring.
// - Native calls ncclAllReduce / ncclReduceScatter. NCCL picks ring or tree, channels
//   and protocol by size, world and topology (and NCCL_ALGO/NCCL_PROTO); for one
//   world, topology, NCCL version and size, in practice the same choice and the same
//   bits, but NCCL documents no order and promises no bit reproducibility across any
//   of those; results on different ranks are identical in practice. BF16/F16 are
//   reduced in their own type (rounded at each step, not once in FP32 as the MPI
//   backend does). Avg is ncclSum followed by a division by world on the device (as
//   the MPI backend: exact for integer-valued sums), not ncclAvg (a pre-multiply).
//   Max/Min follow NCCL's operators; NaN propagation is not guaranteed there.
// - all_gather, broadcast and all_to_all_v move bytes: exact in both modes.
//
// Failure policy: argument checks throw before anything is enqueued (dist/
// communicator.h). Unlike the MPI backend, a rank cannot check the sizes other ranks
// pass: ranks that disagree on a collective's size hang in NCCL or corrupt data,
// rather than get an error. A rank that throws ends the job through MpiEnv::abort ->
// MPI_Abort, which also ends ranks spinning in an NCCL kernel. The destructor uses
// ncclCommAbort instead of ncclCommDestroy while an exception unwinds.
//
// Not thread-safe: one thread calls. Reference: NCCL 2.28 user guide (communicator
// creation, group calls, point-to-point, in-place conventions of ReduceScatter and
// AllGather), DESIGN.md §6.
#pragma once

#include <mpi.h>

#include <cstddef>

#include "core/stream.h"
#include "core/tensor.h"
#include "dist/communicator.h"

struct ncclComm;  // nccl.h's ncclComm_t is ncclComm*

namespace crucible::dist {

class MpiEnv;

class NcclCommunicator final : public Communicator {
 public:
  // All ranks of MPI_COMM_WORLD when env is active, else one rank. `gpu` is this
  // rank's CUDA device (rank_device(env, Device::cuda(0)) gives the usual choice).
  NcclCommunicator(const MpiEnv& env, Device gpu, CommunicatorConfig config = {});
  // The ranks of any MPI communicator (e.g. an expert-parallel group): rank and world
  // are `comm`'s, its rank 0 makes the NCCL id. Collective over `comm`.
  NcclCommunicator(MPI_Comm comm, Device gpu, CommunicatorConfig config = {});
  ~NcclCommunicator() override;

  int rank() const override { return rank_; }
  int world() const override { return world_; }
  std::string_view backend() const override { return "nccl"; }
  // Only this rank's GPU.
  bool supports_device(Device device) const override { return device == gpu_; }
  Device gpu() const { return gpu_; }

 protected:
  Device staging_device() const override { return gpu_; }
  void do_all_reduce(Tensor& t, ReduceOp op, const Stream& stream) override;
  void do_reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op, const Stream& stream) override;
  void do_all_gather(const Tensor& in, Tensor& out, const Stream& stream) override;
  void do_broadcast(Tensor& t, int root, const Stream& stream) override;
  void do_all_to_all_v(const Tensor& in, std::span<const std::int64_t> send_counts, Tensor& out,
                       std::span<const std::int64_t> recv_counts, const Stream& stream) override;
  void do_barrier() override;

 private:
  // comm == MPI_COMM_NULL: a one-rank communicator without MPI.
  void init(MPI_Comm comm);
  void ordered_all_reduce(Tensor& t, ReduceOp op, void* stream);
  void ordered_reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op, void* stream);
  void native_all_reduce(Tensor& t, ReduceOp op, void* stream);
  void native_reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op, void* stream);
  // A device buffer of at least `bytes`; grows, never shrinks (about chunk_elems
  // elements of the widest dtype reduced so far).
  std::byte* scratch(std::size_t bytes);

  ncclComm* comm_ = nullptr;
  int rank_ = 0;
  int world_ = 1;
  Device gpu_;
  Tensor scratch_;       // [bytes] U8 on gpu_
  Tensor barrier_word_;  // [1] I32 on gpu_
  Stream barrier_stream_;
};

}  // namespace crucible::dist
