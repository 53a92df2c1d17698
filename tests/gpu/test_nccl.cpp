// NcclCommunicator (dist/cuda/nccl_communicator.h) and its fold kernel against the CPU
// references: detail::fold_in_rank_order and the collective case table of tests/dist.
//
// Invariant under test: the GPU fold has the CPU fold's bits (NaN positions; not NaN
// signs or payloads) for every dtype and op, wide magnitudes, infinities, subnormals
// and overflow; every collective of the NCCL backend returns exactly the reference
// bits (deterministic mode: the rank-ordered fold; native: exact small-integer sums),
// in place and not, on a created stream and on the legacy default stream.
//
// One GPU (test_gpu as is): the NCCL communicator has one rank (no MPI), which still
// runs its whole deterministic path (scratch rows, fold kernel, chunking) and every
// NCCL call. Two GPUs: "NCCL collectives on 2 ranks ..." below re-executes this binary
// under mpirun when it sees two GPUs and mpirun, and is skipped (with a warning)
// otherwise. By hand, on a machine with 2 GPUs:
//   OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
//     mpirun -np 2 --bind-to none -x LD_LIBRARY_PATH build-cuda/tests/test_gpu "[nccl_worker]"
// (one command; the first line sets the environment, needed only as root)
// runs the worker on two ranks (one GPU each): the case table on NCCL, the NCCL
// deterministic digest against the MPI backend's in the same job, and the helpers.
// Reference: dist/communicator.h, tests/dist/collective_checks.h,
// tests/dist/test_mpi_collectives.cpp (the same re-execution under mpirun).
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <regex>
#include <string>
#include <vector>

#include "core/device_memory.h"
#include "core/numerics.h"
#include "dist/cuda/nccl_communicator.h"
#include "dist/cuda/rank_fold_cuda.h"
#include "dist/mpi_communicator.h"
#include "dist/mpi_env.h"
#include "tests/catch.h"
#include "tests/mpi_job.h"
#include "tests/dist/collective_checks.h"
#include "tests/gpu/gpu_random.h"

using namespace crucible;
using namespace crucible::dist;
using crucible::gpu_test::SplitMix;

namespace {

const DType kReduceDtypes[] = {DType::F32, DType::F64, DType::BF16, DType::F16,
                               DType::I32, DType::I64, DType::U8};
const ReduceOp kOps[] = {ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min, ReduceOp::Avg};

bool is_float(DType t) {
  return t == DType::F32 || t == DType::F64 || t == DType::BF16 || t == DType::F16;
}

// Element i of a CPU tensor as a double (floats) for NaN checks.
double value_at(const Tensor& t, std::int64_t i) {
  switch (t.dtype()) {
    case DType::F64: return t.data<double>()[i];
    case DType::F32: return t.data<float>()[i];
    case DType::BF16: return bf16_to_f32(t.data<std::uint16_t>()[i]);
    case DType::F16: return f16_to_f32(t.data<std::uint16_t>()[i]);
    default: return 0.0;
  }
}

// Same NaN positions, identical bits elsewhere; reports the first difference.
void require_fold_bits(const std::string& what, const Tensor& cpu, const Tensor& gpu) {
  INFO(what);
  const Tensor g = on_host(gpu);
  REQUIRE(g.numel() == cpu.numel());
  const std::size_t es = dtype_size(cpu.dtype());
  std::int64_t mismatches = 0, first = -1;
  for (std::int64_t i = 0; i < cpu.numel(); ++i) {
    bool same;
    if (is_float(cpu.dtype()) && (std::isnan(value_at(cpu, i)) || std::isnan(value_at(g, i))))
      same = std::isnan(value_at(cpu, i)) && std::isnan(value_at(g, i));
    else
      same = std::memcmp(static_cast<const char*>(cpu.raw()) + i * es,
                         static_cast<const char*>(g.raw()) + i * es, es) == 0;
    if (!same && mismatches++ == 0) first = i;
  }
  INFO("first mismatch at " << first << ": cpu " << (first >= 0 ? value_at(cpu, first) : 0.0)
                            << ", gpu " << (first >= 0 ? value_at(g, first) : 0.0));
  REQUIRE(mismatches == 0);
}

// [rows, cols] of `dt`: wide magnitudes (order-sensitive sums), and for the floats
// infinities, NaN, signed zeros, subnormals and values whose sums overflow, at a few
// positions; integers over their whole range (sums wrap).
Tensor random_rows(DType dt, std::int64_t rows, std::int64_t cols, std::uint64_t seed) {
  Tensor t(Shape{rows, cols}, dt, Device::cpu(), "fold.rows");
  SplitMix rng{seed};
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (std::int64_t i = 0; i < rows * cols; ++i) {
    const std::int64_t col = i % cols;
    float v = rng.uniform(-0.5f, 0.5f) * std::ldexp(1.0f, static_cast<int>(rng.below(25)) - 12);
    if (col == 3 && rng.below(4) == 0) v = rng.below(2) ? inf : -inf;
    if (col == 5 && rng.below(3) == 0) v = nan;
    if (col == 6) v = rng.below(2) ? 0.0f : -0.0f;
    if (col == 8) v = dt == DType::F16 ? 40000.0f : 3.0e38f;  // sums overflow to inf
    if (col == 9) v = rng.uniform(-1.0f, 1.0f) * (dt == DType::F16 ? 1e-7f : 1e-39f);  // subnormal
    switch (dt) {
      case DType::F64:
        t.data<double>()[i] = col == 1 ? static_cast<double>(v) * 1e-300 : static_cast<double>(v) / 3;
        break;
      case DType::F32: t.data<float>()[i] = v; break;
      case DType::BF16: t.data<std::uint16_t>()[i] = f32_to_bf16(v); break;
      case DType::F16: t.data<std::uint16_t>()[i] = f32_to_f16(col == 8 || col == 9 ? v : v / 64); break;
      case DType::I64: t.data<std::int64_t>()[i] = static_cast<std::int64_t>(rng.next()); break;
      case DType::I32: t.data<std::int32_t>()[i] = static_cast<std::int32_t>(rng.next()); break;
      default: t.data<std::uint8_t>()[i] = static_cast<std::uint8_t>(rng.next()); break;
    }
  }
  return t;
}

// x / divisor in x's accumulation type, rounded once: the native Avg's post-division.
Tensor divided(const Tensor& x, int divisor) {
  Tensor out = x.clone();
  for (std::int64_t i = 0; i < x.numel(); ++i) switch (x.dtype()) {
      case DType::F64: out.data<double>()[i] = x.data<double>()[i] / divisor; break;
      case DType::F32: out.data<float>()[i] = x.data<float>()[i] / static_cast<float>(divisor); break;
      case DType::BF16:
        out.data<std::uint16_t>()[i] =
            f32_to_bf16(bf16_to_f32(x.data<std::uint16_t>()[i]) / static_cast<float>(divisor));
        break;
      case DType::F16:
        out.data<std::uint16_t>()[i] =
            f32_to_f16(f16_to_f32(x.data<std::uint16_t>()[i]) / static_cast<float>(divisor));
        break;
      default: break;
    }
  return out;
}

// CPU tensors in, the NCCL communicator's GPU in between: lets the CPU case table of
// tests/dist drive the NCCL backend. In-place calls stay in place on the GPU.
class StagedNccl final : public Communicator {
 public:
  explicit StagedNccl(std::unique_ptr<NcclCommunicator> inner)
      : Communicator(inner->config()), inner_(std::move(inner)), stream_(Stream::create(gpu())) {}
  int rank() const override { return inner_->rank(); }
  int world() const override { return inner_->world(); }
  std::string_view backend() const override { return "nccl"; }
  bool supports_device(Device device) const override { return device.is_cpu(); }

 protected:
  void do_all_reduce(Tensor& t, ReduceOp op, const Stream&) override {
    Tensor g = t.to(gpu());
    inner_->all_reduce(g, op, stream_);
    finish(t, g);
  }
  void do_reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op, const Stream&) override {
    Tensor g_in = in.to(gpu());
    Tensor g_out = in.storage() == out.storage() ? block(g_in, out) : Tensor(out.shape(), out.dtype(), gpu());
    inner_->reduce_scatter(g_in, g_out, op, stream_);
    finish(out, g_out);
  }
  void do_all_gather(const Tensor& in, Tensor& out, const Stream&) override {
    Tensor g_out = out.to(gpu());  // in place, the other blocks start as out's
    Tensor g_in = in.storage() == out.storage() ? block(g_out, in) : in.to(gpu());
    inner_->all_gather(g_in, g_out, stream_);
    finish(out, g_out);
  }
  void do_broadcast(Tensor& t, int root, const Stream&) override {
    Tensor g = t.to(gpu());
    inner_->broadcast(g, root, stream_);
    finish(t, g);
  }
  void do_all_to_all_v(const Tensor& in, std::span<const std::int64_t> send_counts, Tensor& out,
                       std::span<const std::int64_t> recv_counts, const Stream&) override {
    Tensor g_in = in.to(gpu());
    Tensor g_out = out.to(gpu());  // rows past the counts must stay as they are
    inner_->all_to_all_v(g_in, send_counts, g_out, recv_counts, stream_);
    finish(out, g_out);
  }
  void do_barrier() override { inner_->barrier(); }

 private:
  Device gpu() const { return inner_->gpu(); }
  // The view of `whole_gpu` (a GPU copy of part's storage owner) that `part` is of the
  // CPU whole: block rank(), as the base checks allow.
  Tensor block(const Tensor& whole_gpu, const Tensor& part) const {
    const std::int64_t m = part.numel();
    return whole_gpu.reshape(Shape{whole_gpu.numel()})
        .slice(rank() * m, (rank() + 1) * m)
        .reshape(part.shape());
  }
  void finish(Tensor& host, const Tensor& g) {
    stream_.synchronize();
    host.copy_from(g);
  }
  std::unique_ptr<NcclCommunicator> inner_;
  Stream stream_;
};

testing::MakeCommunicator staged_maker(const MpiEnv& env, Device gpu) {
  return [&env, gpu](const CommunicatorConfig& config) -> std::unique_ptr<Communicator> {
    return std::make_unique<StagedNccl>(std::make_unique<NcclCommunicator>(env, gpu, config));
  };
}

// GPU tensors directly: both stream kinds, the helpers staged on the GPU, and the
// argument checks. Counted, not thrown, so that a multi-rank job keeps going.
void check_direct(NcclCommunicator& c, testing::CheckLog& log) {
  const int w = c.world(), me = c.rank();
  const Device gpu = c.gpu();
  const std::int64_t n = 10007;
  auto rank_values = [&](int r) {
    Tensor t(Shape{n}, DType::F32, Device::cpu(), "grads.rank" + std::to_string(r));
    SplitMix rng{900u + static_cast<std::uint64_t>(r)};
    for (float& v : t.span<float>()) v = rng.uniform(-1.0f, 1.0f) * 1024.0f;
    return t;
  };
  std::vector<Tensor> xs;
  for (int r = 0; r < w; ++r) xs.push_back(rank_values(r));
  Tensor expected(Shape{n}, DType::F32);
  reduce_in_rank_order(xs, ReduceOp::Avg, expected);
  {
    // As the trainer calls it: the legacy default stream.
    Tensor g = xs[me].to(gpu);
    c.all_reduce(g, ReduceOp::Avg, Stream::default_for(gpu));
    const Tensor h = on_host(g);
    log.expect(std::memcmp(h.raw(), expected.raw(), h.nbytes()) == 0,
               "all_reduce avg on the legacy default stream");
  }
  {
    Stream s = Stream::create(gpu);
    Tensor g = xs[me].to(gpu);
    Tensor big(Shape{3, n}, DType::F32, gpu, "two_more_rows");  // work queued behind it
    c.all_reduce(g, ReduceOp::Avg, s);
    c.all_reduce(big, ReduceOp::Sum, s);
    s.synchronize();
    const Tensor h = on_host(g);
    log.expect(std::memcmp(h.raw(), expected.raw(), h.nbytes()) == 0,
               "all_reduce avg on a created stream");
  }
  double sum = 0;
  for (int r = 0; r < w; ++r) sum += r + 0.5;
  log.expect(c.all_reduce_f64(me + 0.5, ReduceOp::Sum) == sum, "all_reduce_f64 staged on the GPU");
  log.expect(c.all_reduce_i64(std::int64_t{me} - 3, ReduceOp::Min) == -3, "all_reduce_i64 min");
  std::vector<std::int64_t> send(static_cast<std::size_t>(w)), want(static_cast<std::size_t>(w));
  for (int p = 0; p < w; ++p) send[p] = 10 * me + p, want[p] = 10 * p + me;
  log.expect(c.all_to_all_counts(send) == want, "all_to_all_counts staged on the GPU");
  c.barrier();

  auto throws_with = [&](auto&& call, const char* text) {
    try {
      call();
    } catch (const Error& e) {
      return std::string(e.what()).find(text) != std::string::npos;
    }
    return false;
  };
  Tensor cpu_t(Shape{4}, DType::F32, Device::cpu(), "host_grads");
  log.expect(throws_with([&] { c.all_reduce(cpu_t, ReduceOp::Sum); },
                         "the nccl communicator cannot move cpu tensors"),
             "a CPU tensor is refused, by name");
  Tensor gpu_t(Shape{4}, DType::F32, gpu, "grads");
  log.expect(throws_with([&] { c.all_reduce(gpu_t, ReduceOp::Sum, Stream()); }, "but the stream is on"),
             "a stream of another device is refused");
  log.expect(c.supports_device(gpu) && !c.supports_device(Device::cpu()) &&
                 !c.supports_device(Device::cuda(gpu.index + 1)),
             "supports_device: its own GPU only");
}

}  // namespace

TEST_CASE("the GPU rank fold has the CPU fold's bits", "[gpu][nccl]") {
  const Device gpu = Device::cuda(0);
  for (DType dt : kReduceDtypes)
    for (ReduceOp op : kOps) {
      if (!reduce_supported(dt, op)) continue;
      for (int n_parts : {1, 2, 3, 5})
        for (std::int64_t count : {std::int64_t{1}, std::int64_t{37}, std::int64_t{70001}}) {
          const std::int64_t stride = count + 3;  // rows are padded, as the scratch slots
          const Tensor rows = random_rows(dt, n_parts, stride,
                                          7919u * static_cast<std::uint64_t>(dt) + 131u * n_parts +
                                              static_cast<std::uint64_t>(count) + 17u * static_cast<std::uint64_t>(op));
          std::vector<const void*> parts;
          for (int k = 0; k < n_parts; ++k) parts.push_back(rows.row(k).raw());
          Tensor expected(Shape{count}, dt);
          dist::detail::fold_in_rank_order(dt, op, parts.data(), n_parts, count, expected.raw());

          const Tensor g_rows = rows.to(gpu);
          Tensor g_out(Shape{count}, dt, gpu, "fold.out");
          crucible::dist::cuda::fold_rows_in_rank_order(dt, op, g_rows.raw(), stride, n_parts, count, g_out.raw(),
                                        n_parts, nullptr);
          require_fold_bits(std::string(dtype_name(dt)) + " " + std::string(reduce_op_name(op)) +
                                " parts=" + std::to_string(n_parts) + " count=" + std::to_string(count),
                            expected, g_out);
        }
    }
  // The native Avg's post-division: one row, in place, divided by the world.
  for (DType dt : {DType::F32, DType::F64, DType::BF16, DType::F16})
    for (int divisor : {2, 3, 7}) {
      const Tensor x = random_rows(dt, 1, 4099, 55u + static_cast<std::uint64_t>(divisor));
      Tensor g = x.to(gpu);
      crucible::dist::cuda::fold_rows_in_rank_order(dt, ReduceOp::Avg, g.raw(), x.numel(), 1, x.numel(), g.raw(),
                                    divisor, nullptr);
      require_fold_bits(std::string(dtype_name(dt)) + " / " + std::to_string(divisor),
                        divided(x, divisor).reshape(Shape{x.numel()}), g.reshape(Shape{x.numel()}));
    }
}

TEST_CASE("NCCL on one GPU returns the reference bits for the whole collective case table",
          "[gpu][nccl]") {
  if (launched_by_mpi()) return;  // under mpirun this binary runs only the workers
  MpiEnv env(nullptr, nullptr);
  testing::CheckLog log;
  testing::run_collective_checks(staged_maker(env, Device::cuda(0)), log);
  INFO(log.failures << " of " << log.checks << " checks failed (see stderr)");
  REQUIRE(log.checks > 100);
  REQUIRE(log.failures == 0);

  NcclCommunicator comm(env, Device::cuda(0));
  REQUIRE(comm.world() == 1);
  REQUIRE(comm.backend() == "nccl");
  testing::CheckLog direct;
  check_direct(comm, direct);
  REQUIRE(direct.checks >= 8);
  REQUIRE(direct.failures == 0);
  // Deterministic bits do not depend on the backend: NCCL's equal Self's.
  const std::uint64_t nccl = testing::deterministic_digest(staged_maker(env, Device::cuda(0)));
  const std::uint64_t self = testing::deterministic_digest(
      [](const CommunicatorConfig& c) { return std::make_unique<SelfCommunicator>(c); });
  REQUIRE(nccl == self);
}

TEST_CASE("make_communicator keeps SelfCommunicator for a single process on a GPU", "[gpu][nccl]") {
  if (launched_by_mpi()) return;
  MpiEnv env(nullptr, nullptr);
  REQUIRE(rank_device(env, Device::cuda(0)) == Device::cuda(0));
  REQUIRE(make_communicator(env, Device::cuda(0))->backend() == "self");
}

// ---- Two ranks, one GPU each: re-executes this binary under mpirun.

namespace {

constexpr const char* kNcclWorker = "nccl worker runs the case table on every rank";
constexpr const char* kNcclThrowWorker = "nccl worker where rank 1 throws while rank 0 waits";

using JobResult = crucible::mpi_test::MpiJob;

JobResult run_job(int np, const char* worker) {
  return crucible::mpi_test::run_mpi_job(np, worker, "", 240, "-x LD_LIBRARY_PATH");
}

bool can_run_two_ranks() {
  if (cuda_device_count() < 2) {
    WARN("fewer than 2 GPUs visible: the 2-rank NCCL test is skipped");
    return false;
  }
  if (!crucible::mpi_test::have_mpirun()) {
    WARN("mpirun not found: the 2-rank NCCL test is skipped");
    return false;
  }
  return true;
}

template <typename Body>
void run_or_abort(const MpiEnv& env, Body body) {
  try {
    body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    std::fflush(stderr);
    env.abort(3);
  }
}

}  // namespace

TEST_CASE("NCCL collectives on 2 ranks (2 GPUs) return the reference bits", "[gpu][nccl][mpi]") {
  if (launched_by_mpi() || !can_run_two_ranks()) return;
  const JobResult r = run_job(2, kNcclWorker);
  INFO(r.output);
  REQUIRE(r.exit_code() == 0);
  REQUIRE_THAT(r.output, Catch::Contains("nccl world=2 ok"));
}

TEST_CASE("a rank that throws ends a 2-rank NCCL job, with its message", "[gpu][nccl][mpi]") {
  if (launched_by_mpi() || !can_run_two_ranks()) return;
  const JobResult r = run_job(2, kNcclThrowWorker);
  INFO(r.output);
  REQUIRE(WIFEXITED(r.status));
  REQUIRE(r.exit_code() != 0);
  REQUIRE(r.exit_code() != 124);  // not a hang ended by `timeout`
  REQUIRE(r.seconds < 120);
  REQUIRE_THAT(r.output, Catch::Contains("must hold world (2)"));
}

TEST_CASE("nccl worker runs the case table on every rank", "[.][nccl_worker]") {
  MpiEnv env(nullptr, nullptr);
  std::int64_t failures = -1;
  run_or_abort(env, [&] {
    const Device gpu = rank_device(env, Device::cuda(0));
    testing::CheckLog log;
    testing::run_collective_checks(staged_maker(env, gpu), log);
    auto comm = make_communicator(env, gpu);
    log.rank = comm->rank();
    log.expect(comm->backend() == (env.world() > 1 ? "nccl" : "self"),
               "make_communicator picks NCCL for a GPU run of several ranks");
    NcclCommunicator direct(env, gpu);
    check_direct(direct, log);
    // Deterministic bits do not depend on the backend: NCCL's equal MPI's (CPU).
    const std::uint64_t nccl = testing::deterministic_digest(staged_maker(env, gpu));
    const std::uint64_t mpi = testing::deterministic_digest(
        [&](const CommunicatorConfig& c) -> std::unique_ptr<Communicator> {
          if (env.active()) return std::make_unique<MpiCommunicator>(env, c);
          return std::make_unique<SelfCommunicator>(c);
        });
    log.expect(nccl == mpi, "the NCCL deterministic digest equals the MPI backend's");
    failures = direct.all_reduce_i64(std::int64_t{log.failures}, ReduceOp::Sum);
    if (direct.rank() == 0 && failures == 0)
      std::printf("nccl world=%d ok checks=%d\n", direct.world(), log.checks);
  });
  REQUIRE(failures == 0);
}

TEST_CASE("nccl worker where rank 1 throws while rank 0 waits", "[.][nccl_worker]") {
  MpiEnv env(nullptr, nullptr);
  run_or_abort(env, [&] {
    NcclCommunicator comm(env, rank_device(env, Device::cuda(0)));
    Tensor t(Shape{1000}, DType::F32, comm.gpu(), "grads");
    Stream s = Stream::create(comm.gpu());
    comm.all_reduce(t, ReduceOp::Sum, s);
    if (comm.rank() == 1) {
      // A malformed call on one rank only: it throws before communicating ...
      Tensor in(Shape{7}, DType::F32, comm.gpu()), out(Shape{2}, DType::F32, comm.gpu());
      comm.reduce_scatter(in, out, ReduceOp::Sum, s);
    }
    // ... while rank 0 waits in a collective that rank 1 never joins.
    comm.all_reduce(t, ReduceOp::Sum, s);
    s.synchronize();
    comm.barrier();
  });
}
