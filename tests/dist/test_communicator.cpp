// SelfCommunicator, the rank-ordered reference fold, and the argument checks every
// collective makes before it communicates.
//
// Invariant under test: a single process runs the same collective case table as the
// multi-rank jobs (tests/dist/collective_checks.cpp); the reference fold sums in rank
// order and rounds once; malformed calls fail with a message naming the tensors.
// Reference: dist/communicator.h.
#include <cmath>
#include <cstring>
#include <limits>

#include "core/numerics.h"
#include "dist/communicator.h"
#include "dist/mpi_env.h"
#include "tests/catch.h"
#include "tests/dist/collective_checks.h"

using namespace crucible;
using namespace crucible::dist;

namespace {

Tensor f32(std::initializer_list<float> values) {
  Tensor t(Shape{static_cast<std::int64_t>(values.size())}, DType::F32);
  std::int64_t i = 0;
  for (float v : values) t.data<float>()[i++] = v;
  return t;
}

float fold_f32(std::initializer_list<float> per_rank, ReduceOp op) {
  std::vector<Tensor> parts;
  for (float v : per_rank) parts.push_back(f32({v}));
  Tensor out(Shape{1}, DType::F32);
  reduce_in_rank_order(parts, op, out);
  return out.data<float>()[0];
}

}  // namespace

TEST_CASE("the collective case table passes on SelfCommunicator", "[dist]") {
  testing::CheckLog log;
  testing::run_collective_checks(
      [](const CommunicatorConfig& c) { return std::make_unique<SelfCommunicator>(c); }, log);
  INFO(log.failures << " of " << log.checks << " checks failed (see stderr)");
  REQUIRE(log.checks > 100);
  REQUIRE(log.failures == 0);
}

TEST_CASE("make_communicator gives a SelfCommunicator to a process not started by mpirun",
          "[dist]") {
  if (launched_by_mpi()) return;  // this test binary under mpirun runs only the workers
  MpiEnv env(nullptr, nullptr);
  REQUIRE_FALSE(env.active());
  auto comm = make_communicator(env);
  REQUIRE(comm->backend() == "self");
  REQUIRE(comm->world() == 1);
  REQUIRE(comm->rank() == 0);
  REQUIRE(comm->reduction() == ReductionMode::Deterministic);  // the default
}

TEST_CASE("a single process keeps SelfCommunicator on any device; rank_device maps run.device",
          "[dist]") {
  if (launched_by_mpi()) return;
  MpiEnv env(nullptr, nullptr);
  REQUIRE(make_communicator(env, Device::cuda(0))->backend() == "self");
  REQUIRE(rank_device(env, Device::cpu()) == Device::cpu());
  if (!cuda_compiled())
    REQUIRE_THROWS_WITH(rank_device(env, Device::cuda(0)),
                        Catch::Contains("built without CUDA"));
}

TEST_CASE("reduce_in_rank_order folds in rank order and rounds once", "[dist]") {
  // FP32 addition is not associative: the order is part of the result.
  REQUIRE(fold_f32({1.0f, 1e8f, -1e8f}, ReduceOp::Sum) == 0.0f);
  REQUIRE(fold_f32({1e8f, -1e8f, 1.0f}, ReduceOp::Sum) == 1.0f);
  REQUIRE(fold_f32({1.0f, 2.0f, 4.0f}, ReduceOp::Avg) == 7.0f / 3.0f);
  REQUIRE(fold_f32({1.0f, -3.0f, 2.0f}, ReduceOp::Max) == 2.0f);
  REQUIRE(fold_f32({1.0f, -3.0f, 2.0f}, ReduceOp::Min) == -3.0f);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  REQUIRE(std::isnan(fold_f32({1.0f, nan, 3.0f}, ReduceOp::Max)));
  REQUIRE(std::isnan(fold_f32({nan, 1.0f}, ReduceOp::Min)));

  // BF16 accumulates in FP32: 1 + 2^-8 + 2^-8 = 1 + 2^-7 (a BF16 value); rounding to
  // BF16 after each step would give 1 twice (ties to even).
  std::vector<Tensor> parts;
  for (float v : {1.0f, 0.00390625f, 0.00390625f}) {
    Tensor t(Shape{1}, DType::BF16);
    t.data<std::uint16_t>()[0] = f32_to_bf16(v);
    parts.push_back(t);
  }
  Tensor out(Shape{1}, DType::BF16);
  reduce_in_rank_order(parts, ReduceOp::Sum, out);
  REQUIRE(bf16_to_f32(out.data<std::uint16_t>()[0]) == 1.0078125f);

  // Integers wrap in two's complement.
  Tensor a(Shape{1}, DType::I32), b(Shape{1}, DType::I32), s(Shape{1}, DType::I32);
  a.data<std::int32_t>()[0] = std::numeric_limits<std::int32_t>::max();
  b.data<std::int32_t>()[0] = 1;
  const std::vector<Tensor> ints{a, b};
  reduce_in_rank_order(ints, ReduceOp::Sum, s);
  REQUIRE(s.data<std::int32_t>()[0] == std::numeric_limits<std::int32_t>::min());

  // The output may be one of the contributions.
  std::vector<Tensor> alias{f32({1, 2}), f32({10, 20}), f32({100, 200})};
  Tensor dst = alias[1];
  reduce_in_rank_order(alias, ReduceOp::Sum, dst);
  REQUIRE(dst.data<float>()[0] == 111.0f);
  REQUIRE(dst.data<float>()[1] == 222.0f);
}

TEST_CASE("reductions accept the dtype and op pairs of the table, and only those", "[dist]") {
  for (DType t : {DType::F64, DType::F32, DType::BF16, DType::F16})
    for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min, ReduceOp::Avg})
      REQUIRE(reduce_supported(t, op));
  for (DType t : {DType::I64, DType::I32}) {
    REQUIRE(reduce_supported(t, ReduceOp::Sum));
    REQUIRE_FALSE(reduce_supported(t, ReduceOp::Avg));
  }
  REQUIRE(reduce_supported(DType::U8, ReduceOp::Max));
  REQUIRE_FALSE(reduce_supported(DType::U8, ReduceOp::Sum));
  REQUIRE_FALSE(reduce_supported(DType::E4M3, ReduceOp::Max));

  SelfCommunicator comm;
  Tensor flags(Shape{4}, DType::U8, Device::cpu(), "flags");
  REQUIRE_THROWS_WITH(comm.all_reduce(flags, ReduceOp::Sum),
                      Catch::Contains("sum is not defined for u8 tensor 'flags'"));
  Tensor counts(Shape{4}, DType::I64, Device::cpu(), "counts");
  REQUIRE_THROWS_WITH(comm.all_reduce(counts, ReduceOp::Avg),
                      Catch::Contains("avg is not defined for i64"));
  Tensor q(Shape{4}, DType::E4M3);
  REQUIRE_THROWS(comm.all_reduce(q, ReduceOp::Max));
  Tensor gathered(Shape{4}, DType::E4M3);
  comm.all_gather(q, gathered);  // FP8 bytes move fine
}

TEST_CASE("malformed collectives fail before communicating, naming the tensors", "[dist]") {
  SelfCommunicator comm;
  Tensor in(Shape{4}, DType::F32, Device::cpu(), "grads.flat");
  Tensor out(Shape{3}, DType::F32, Device::cpu(), "grads.shard");
  REQUIRE_THROWS_WITH(
      comm.reduce_scatter(in, out, ReduceOp::Sum),
      Catch::Contains("input 'grads.flat' [4] must hold world (1) x output 'grads.shard' [3]"));
  REQUIRE_THROWS_WITH(comm.all_gather(out, in), Catch::Contains("must hold world (1)"));
  Tensor half(Shape{4}, DType::BF16, Device::cpu(), "bf16");
  REQUIRE_THROWS_WITH(comm.reduce_scatter(in, half, ReduceOp::Sum),
                      Catch::Contains("output 'bf16' is bf16"));
  REQUIRE_THROWS_WITH(comm.broadcast(in, 1),
                      Catch::Contains("root 1 is not a rank of a world of 1"));
  Tensor undefined;
  REQUIRE_THROWS_WITH(comm.all_reduce(undefined, ReduceOp::Sum), Catch::Contains("undefined"));

  // Overlap other than "the output is the input's own block" is refused.
  Tensor buf(Shape{10}, DType::F32, Device::cpu(), "buf");
  Tensor a = buf.slice(0, 5), b = buf.slice(2, 7);
  REQUIRE_THROWS_WITH(comm.reduce_scatter(a, b, ReduceOp::Sum), Catch::Contains("overlaps"));
  REQUIRE_THROWS_WITH(comm.all_gather(a, b), Catch::Contains("overlaps"));
  comm.reduce_scatter(a, a, ReduceOp::Sum);  // in place (world 1: the whole input)

  // all_to_all_v counts: one per rank, non-negative, within the rows; Self sends to itself.
  Tensor rows(Shape{6, 4}, DType::F32, Device::cpu(), "tokens");
  Tensor recv(Shape{6, 4}, DType::F32, Device::cpu(), "recv");
  const std::vector<std::int64_t> two{3, 3}, neg{-1}, many{7}, three{3}, four{4};
  REQUIRE_THROWS_WITH(comm.all_to_all_v(rows, two, recv, two),
                      Catch::Contains("2 entries for a world of 1"));
  REQUIRE_THROWS_WITH(comm.all_to_all_v(rows, neg, recv, neg), Catch::Contains("negative"));
  REQUIRE_THROWS_WITH(comm.all_to_all_v(rows, many, recv, many),
                      Catch::Contains("add up to 7 rows"));
  REQUIRE_THROWS_WITH(comm.all_to_all_v(rows, three, recv, four),
                      Catch::Contains("sends 3 rows to itself"));
  Tensor wide(Shape{6, 5}, DType::F32, Device::cpu(), "wide");
  REQUIRE_THROWS_WITH(comm.all_to_all_v(rows, three, wide, three),
                      Catch::Contains("differ in size"));
  REQUIRE_THROWS_WITH(comm.all_to_all_v(rows, three, rows, three), Catch::Contains("overlap"));

  CommunicatorConfig bad;
  bad.chunk_elems = 0;
  REQUIRE_THROWS_WITH(SelfCommunicator(bad), Catch::Contains("chunk_elems must be in [1,"));
}

TEST_CASE("SelfCommunicator copies for scatters and gathers and leaves reductions as they are",
          "[dist]") {
  SelfCommunicator comm;
  Tensor x = f32({1.5f, -2.0f, 3.25f});
  Tensor y = x.clone();
  comm.all_reduce(y, ReduceOp::Avg);
  REQUIRE(std::memcmp(x.raw(), y.raw(), x.nbytes()) == 0);
  Tensor z(Shape{3}, DType::F32);
  comm.reduce_scatter(x, z, ReduceOp::Sum);
  REQUIRE(z.data<float>()[2] == 3.25f);
  Tensor g(Shape{3}, DType::F32);
  comm.all_gather(x, g);
  REQUIRE(g.data<float>()[1] == -2.0f);
  REQUIRE(comm.all_reduce_f64(2.5, ReduceOp::Sum) == 2.5);
  REQUIRE(comm.all_reduce_i64(std::int64_t{7}, ReduceOp::Max) == 7);
  const std::vector<std::int64_t> send{5};
  REQUIRE(comm.all_to_all_counts(send) == send);
  comm.barrier();
}
