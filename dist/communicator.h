// dist/communicator.h: collectives over the ranks of a job (DESIGN.md §6).
//
// A Communicator moves and reduces Tensors between `world()` ranks: all_reduce,
// reduce_scatter, all_gather, broadcast, all_to_all_v, barrier, plus small host
// helpers for metrics. Implementations: SelfCommunicator (world 1, any device),
// MpiCommunicator (dist/mpi_communicator.h, CPU buffers) and, in CUDA builds,
// NcclCommunicator (dist/cuda/nccl_communicator.h, GPU buffers, ops enqueued on the
// Stream they are given).
//
// Contract of every collective: all ranks call it in the same order with the same
// op, dtype and sizes (all_to_all_v: matching counts). Argument checks that one rank
// can make alone run before any communication and throw crucible::Error. Tensors are
// contiguous (core/tensor.h) and live on the device of `stream` (the default Stream()
// is the CPU's). On a CPU backend the op is complete when it returns; on a GPU
// backend it is enqueued on `stream`.
//
// Determinism (STYLE.md principle 14). ReductionMode::Deterministic is the default:
// every reduction of element i folds the ranks' values in rank order 0..world-1,
//   out[i] = (((x_0[i] op x_1[i]) op x_2[i]) ... op x_{W-1}[i])
// in the accumulation type (F32 for BF16/F16, else the dtype itself), rounded once;
// Avg is that Sum divided by world. The bits depend neither on the run, nor on the
// rank, nor on how a backend chunks the buffer, and reduce_in_rank_order() below is
// the reference every backend is tested against. ReductionMode::Native uses the
// backend's own algorithm (MPI_Allreduce, NCCL ring/tree), whose order is
// implementation-defined: faster at scale, reproducible only up to rounding.
// Data-movement ops (all_gather, broadcast, all_to_all_v) are exact in both modes.
//
// Failure policy (DESIGN.md §6): a rank that fails throws crucible::Error (argument
// checks, CHECK_MPI). Nothing here catches it. The process's top-level handler prints
// the message (which carries the rank) and calls MpiEnv::abort(code) -> MPI_Abort on
// MPI_COMM_WORLD, which ends every rank, including those blocked in a collective, and
// makes mpirun exit non-zero (launch/cli.cpp does this; tests/dist's worker too).
// Never catch an Error around a collective and continue: the other ranks would wait
// for a call that never comes. Returning normally instead of aborting is also wrong:
// MpiEnv's MPI_Finalize is collective and would hang against ranks still in a call.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "core/stream.h"
#include "core/tensor.h"

namespace crucible::dist {

class MpiEnv;

enum class ReduceOp : std::uint8_t { Sum, Max, Min, Avg };
std::string_view reduce_op_name(ReduceOp op);

// Which (dtype, op) pairs a reduction accepts:
//   F64, F32, BF16, F16: Sum, Max, Min, Avg (Max/Min propagate NaN)
//   I64, I32:            Sum, Max, Min      (Sum wraps in two's complement)
//   U8:                  Max, Min           (flags: Max = any, Min = all)
// Every dtype moves through all_gather, broadcast and all_to_all_v.
bool reduce_supported(DType dtype, ReduceOp op);

enum class ReductionMode : std::uint8_t {
  Deterministic,  // rank-ordered fold (above): bit-identical run to run; the default
  Native,         // the backend's own reduction algorithm; order implementation-defined
};
std::string_view reduction_mode_name(ReductionMode mode);

struct CommunicatorConfig {
  ReductionMode reduction = ReductionMode::Deterministic;
  // Deterministic path: elements reduced per step. Scratch memory is about chunk_elems
  // elements whatever the world, messages chunk_elems / world; keeps MPI's int counts
  // in range. The result's bits do not depend on it.
  std::int64_t chunk_elems = std::int64_t{1} << 22;
  void validate() const;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  virtual int rank() const = 0;
  virtual int world() const = 0;
  virtual std::string_view backend() const = 0;  // "self", "mpi", "nccl"
  // Whether tensors on `device` can be passed (Self: any; MPI: CPU; NCCL: its GPU).
  virtual bool supports_device(Device device) const = 0;
  const CommunicatorConfig& config() const { return config_; }
  ReductionMode reduction() const { return config_.reduction; }

  // t: [any shape] on every rank; becomes the reduction over ranks, same on all ranks.
  void all_reduce(Tensor& t, ReduceOp op, const Stream& stream = Stream());
  // in: [world * m] elements (any shape), out: [m]; rank r gets the reduction of block
  // r = in[r*m, (r+1)*m). In place is allowed when out is exactly in's block rank()
  // (the NCCL convention: ZeRO reduces the flat gradient buffer into its own shard).
  void reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op, const Stream& stream = Stream());
  // in: [m], out: [world * m]; out block r = rank r's in. In place is allowed when in
  // is exactly out's block rank().
  void all_gather(const Tensor& in, Tensor& out, const Stream& stream = Stream());
  // t: same shape on every rank; becomes root's t.
  void broadcast(Tensor& t, int root, const Stream& stream = Stream());
  // Rows along dim 0 (a row = numel / dim(0) elements; a 1-D tensor has 1-element rows):
  // rank r sends in rows [sum(send_counts[<p]), +send_counts[p]) to rank p, and receives
  // rank p's rows into out rows [sum(recv_counts[<p]), +recv_counts[p]). recv_counts[p]
  // on r must equal send_counts[r] on p (all_to_all_counts() computes them). Rows past
  // the sums are neither read nor written (capacity buffers are fine). in and out
  // have the same dtype and row size and do not overlap. (MoE dispatch/combine.)
  void all_to_all_v(const Tensor& in, std::span<const std::int64_t> send_counts, Tensor& out,
                    std::span<const std::int64_t> recv_counts, const Stream& stream = Stream());
  void barrier();

  // Host helpers for metrics and bookkeeping (staged through a small buffer on this
  // communicator's device; deterministic like all_reduce).
  double all_reduce_f64(double value, ReduceOp op);
  void all_reduce_f64(std::span<double> values, ReduceOp op);
  std::int64_t all_reduce_i64(std::int64_t value, ReduceOp op);
  void all_reduce_i64(std::span<std::int64_t> values, ReduceOp op);
  // send_counts[p] = rows this rank sends to p; returns recv_counts[p] = rows p sends here.
  std::vector<std::int64_t> all_to_all_counts(std::span<const std::int64_t> send_counts);

 protected:
  explicit Communicator(CommunicatorConfig config);
  // The device on which the host helpers stage their values.
  virtual Device staging_device() const { return Device::cpu(); }

  // Called after the shared argument checks; sizes are consistent, numel > 0 (except
  // all_to_all_v, which every rank joins even when it moves nothing).
  virtual void do_all_reduce(Tensor& t, ReduceOp op, const Stream& stream) = 0;
  virtual void do_reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op,
                                 const Stream& stream) = 0;
  virtual void do_all_gather(const Tensor& in, Tensor& out, const Stream& stream) = 0;
  virtual void do_broadcast(Tensor& t, int root, const Stream& stream) = 0;
  virtual void do_all_to_all_v(const Tensor& in, std::span<const std::int64_t> send_counts,
                               Tensor& out, std::span<const std::int64_t> recv_counts,
                               const Stream& stream) = 0;
  virtual void do_barrier() = 0;

 private:
  void check_tensor(const Tensor& t, const char* op, const char* what, const Stream& stream) const;
  CommunicatorConfig config_;
};

// One process: world 1, rank 0. Reductions leave the tensor as is (the fold of one
// value), gathers and scatters copy. Works on any device, so a single-GPU run uses
// the same code path as a multi-rank one.
class SelfCommunicator final : public Communicator {
 public:
  explicit SelfCommunicator(CommunicatorConfig config = {}) : Communicator(config) {}
  int rank() const override { return 0; }
  int world() const override { return 1; }
  std::string_view backend() const override { return "self"; }
  bool supports_device(Device) const override { return true; }

 protected:
  void do_all_reduce(Tensor& t, ReduceOp op, const Stream& stream) override;
  void do_reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op, const Stream& stream) override;
  void do_all_gather(const Tensor& in, Tensor& out, const Stream& stream) override;
  void do_broadcast(Tensor& t, int root, const Stream& stream) override;
  void do_all_to_all_v(const Tensor& in, std::span<const std::int64_t> send_counts, Tensor& out,
                       std::span<const std::int64_t> recv_counts, const Stream& stream) override;
  void do_barrier() override {}
};

// The communicator of a run whose tensors live on `device` (this rank's device, see
// rank_device() in dist/mpi_env.h):
//   a single process (MPI not active, or world 1) -> SelfCommunicator, on any device;
//   several ranks, device cpu                     -> MpiCommunicator on MPI_COMM_WORLD;
//   several ranks, device cuda:i                  -> NcclCommunicator on cuda:i
//                                                    (dist/cuda/nccl_communicator.h),
//     an error naming the fix in a build without CUDA (and so without NCCL).
std::unique_ptr<Communicator> make_communicator(const MpiEnv& env, Device device = Device::cpu(),
                                                CommunicatorConfig config = {});

// The reference reduction (CPU): out = fold of contributions[0..n) in index order, as
// defined above; Avg divides by n. All tensors have out's dtype and numel; out may be
// one of the contributions. Deterministic backends reproduce exactly these bits.
void reduce_in_rank_order(std::span<const Tensor> contributions, ReduceOp op, Tensor& out);

namespace detail {
// The same fold on raw CPU pointers, for backends: dst[i] = fold over parts[0..n_parts)
// of parts[k][i], i in [0, count). dst may alias any part (each index is read before
// it is written).
void fold_in_rank_order(DType dtype, ReduceOp op, const void* const* parts, int n_parts,
                        std::int64_t count, void* dst);
}  // namespace detail

}  // namespace crucible::dist
