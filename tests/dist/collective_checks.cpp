// tests/dist/collective_checks.cpp: the collective case table (see the header).
//
// Invariant: every expected value is computed locally from every rank's inputs, so a
// check compares exact bits: the rank-ordered fold in deterministic mode; exact sums
// of small integers in native mode (where the order is MPI's). Cases cover each dtype
// and op, sizes below the world (empty blocks), several chunkings, in-place calls,
// and a ZeRO-1 step over a padded Layout.
// Reference: dist/communicator.h (contract), dist/shard.h (ZeRO blocks).
#include "tests/dist/collective_checks.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/arena.h"
#include "core/numerics.h"
#include "core/rng.h"
#include "dist/shard.h"

namespace crucible::dist::testing {

void CheckLog::expect(bool ok, const std::string& what) {
  ++checks;
  if (ok) return;
  ++failures;
  std::fprintf(stderr, "rank %d: FAILED %s\n", rank, what.c_str());
}

namespace {

// Rank `rank`'s input: wide magnitudes (order-sensitive sums) or, when exact, small
// integers whose sums are exact in every dtype and every order.
Tensor rank_input(DType dt, std::int64_t n, int rank, std::uint64_t seed, bool exact) {
  Tensor t(Shape{n}, dt, Device::cpu(), "input.rank" + std::to_string(rank));
  Rng rng(seed, static_cast<std::uint64_t>(rank));
  for (std::int64_t i = 0; i < n; ++i) {
    const float small = static_cast<float>(static_cast<int>(rng.below(17)) - 8);
    const float wide =
        (rng.uniform() - 0.5f) * std::ldexp(1.0f, static_cast<int>(rng.below(25)) - 12);
    const float v = exact ? small : wide;
    switch (dt) {
      case DType::F64:
        t.data<double>()[i] = exact ? v
                                    : (rng.uniform_double() - 0.5) *
                                          std::ldexp(1.0, static_cast<int>(rng.below(41)) - 20);
        break;
      case DType::F32: t.data<float>()[i] = v; break;
      case DType::BF16: t.data<std::uint16_t>()[i] = f32_to_bf16(v); break;
      case DType::F16: t.data<std::uint16_t>()[i] = f32_to_f16(exact ? v : v / 64.0f); break;
      case DType::I64:
        t.data<std::int64_t>()[i] =
            exact ? static_cast<std::int64_t>(v) : static_cast<std::int64_t>(rng.next_u64()) >> 8;
        break;
      case DType::I32:
        t.data<std::int32_t>()[i] =
            exact ? static_cast<std::int32_t>(v) : static_cast<std::int32_t>(rng.next_u32()) >> 4;
        break;
      case DType::U8:
      case DType::E4M3:
      case DType::E5M2:
        t.data<std::uint8_t>()[i] = static_cast<std::uint8_t>(rng.next_u32());
        break;
    }
  }
  return t;
}

std::vector<Tensor> all_inputs(DType dt, std::int64_t n, int world, std::uint64_t seed,
                               bool exact) {
  std::vector<Tensor> xs;
  for (int r = 0; r < world; ++r) xs.push_back(rank_input(dt, n, r, seed, exact));
  return xs;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

std::string describe(const char* op_name, DType dt, ReduceOp op, std::int64_t n,
                     const Communicator& c, const char* extra = "") {
  return std::string(op_name) + " " + std::string(dtype_name(dt)) + " " +
         std::string(reduce_op_name(op)) + " n=" + std::to_string(n) +
         " chunk=" + std::to_string(c.config().chunk_elems) + " " +
         std::string(reduction_mode_name(c.reduction())) + " world=" + std::to_string(c.world()) +
         extra;
}

const DType kReduceDtypes[] = {DType::F32, DType::F64, DType::BF16, DType::F16,
                               DType::I32, DType::I64, DType::U8};
const ReduceOp kOps[] = {ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min, ReduceOp::Avg};

std::uint64_t seed_of(DType dt, ReduceOp op, std::int64_t n) {
  return 1000003u * static_cast<std::uint64_t>(dt) + 7919u * static_cast<std::uint64_t>(op) +
         static_cast<std::uint64_t>(n);
}

void check_all_reduce(Communicator& c, bool exact, std::int64_t n, CheckLog& log) {
  for (DType dt : kReduceDtypes)
    for (ReduceOp op : kOps) {
      if (!reduce_supported(dt, op)) continue;
      const auto xs = all_inputs(dt, n, c.world(), seed_of(dt, op, n), exact);
      Tensor expected(Shape{n}, dt);
      reduce_in_rank_order(xs, op, expected);
      Tensor t = xs[c.rank()].clone();
      c.all_reduce(t, op);
      log.expect(same_bits(t, expected), describe("all_reduce", dt, op, n, c));
    }
}

void check_reduce_scatter(Communicator& c, bool exact, std::int64_t m, CheckLog& log) {
  const int w = c.world(), me = c.rank();
  for (DType dt : {DType::F32, DType::BF16, DType::F64, DType::I64})
    for (ReduceOp op : kOps) {
      if (!reduce_supported(dt, op)) continue;
      const auto xs = all_inputs(dt, w * m, w, seed_of(dt, op, m) + 17, exact);
      std::vector<Tensor> blocks;
      for (const Tensor& x : xs) blocks.push_back(x.slice(me * m, (me + 1) * m));
      Tensor expected(Shape{m}, dt);
      reduce_in_rank_order(blocks, op, expected);

      Tensor out(Shape{m}, dt);
      c.reduce_scatter(xs[me], out, op);
      log.expect(same_bits(out, expected), describe("reduce_scatter", dt, op, m, c));

      Tensor buf = xs[me].clone();  // in place: the output is the input's own block
      Tensor own = buf.slice(me * m, (me + 1) * m);
      c.reduce_scatter(buf, own, op);
      log.expect(same_bits(own, expected), describe("reduce_scatter", dt, op, m, c, " in place"));
    }
}

void check_all_gather(Communicator& c, std::int64_t m, CheckLog& log) {
  const int w = c.world(), me = c.rank();
  for (DType dt : {DType::F32, DType::BF16, DType::U8, DType::I64, DType::E4M3}) {
    const auto xs = all_inputs(dt, m, w, 31 + m, false);
    Tensor out(Shape{w * m}, dt);
    c.all_gather(xs[me], out);
    bool ok = true;
    for (int r = 0; r < w; ++r) ok = ok && same_bits(out.slice(r * m, (r + 1) * m), xs[r]);
    log.expect(ok, describe("all_gather", dt, ReduceOp::Sum, m, c));

    Tensor buf = all_inputs(dt, w * m, 1, 5, false)[0];  // other blocks start as garbage
    Tensor own = buf.slice(me * m, (me + 1) * m);
    own.copy_from(xs[me]);
    c.all_gather(own, buf);
    ok = true;
    for (int r = 0; r < w; ++r) ok = ok && same_bits(buf.slice(r * m, (r + 1) * m), xs[r]);
    log.expect(ok, describe("all_gather", dt, ReduceOp::Sum, m, c, " in place"));
  }
}

void check_broadcast(Communicator& c, CheckLog& log) {
  for (int root = 0; root < c.world(); ++root)
    for (DType dt : {DType::F32, DType::I32, DType::U8}) {
      const auto xs = all_inputs(dt, 1000, c.world(), 77 + root, false);
      Tensor t = xs[c.rank()].clone();
      c.broadcast(t, root);
      log.expect(same_bits(t, xs[root]), "broadcast " + std::string(dtype_name(dt)) +
                                             " from root " + std::to_string(root) +
                                             " world=" + std::to_string(c.world()));
    }
}

// Rank s sends rows_to(s, d) rows to d; a row of `cols` values encodes (s, d, row, col).
void check_all_to_all_v(Communicator& c, CheckLog& log, bool rank0_sends_nothing) {
  const int w = c.world(), me = c.rank();
  const std::int64_t cols = 5;
  auto rows_to = [&](int s, int d) -> std::int64_t {
    if (rank0_sends_nothing) return s == 0 ? 0 : d + 1;
    return (s + 2 * d) % 3;
  };
  auto value = [](int s, int d, std::int64_t row, std::int64_t col) {
    return static_cast<float>(s * 100000 + d * 10000 + row * 10 + col);
  };
  std::vector<std::int64_t> send(w), expected_recv(w);
  std::int64_t n_send = 0, n_recv = 0;
  for (int p = 0; p < w; ++p) {
    send[p] = rows_to(me, p);
    expected_recv[p] = rows_to(p, me);
    n_send += send[p];
    n_recv += expected_recv[p];
  }
  const std::vector<std::int64_t> recv = c.all_to_all_counts(send);
  log.expect(recv == expected_recv, "all_to_all_counts world=" + std::to_string(w));

  Tensor in(Shape{n_send, cols}, DType::F32, Device::cpu(), "dispatch.in");
  for (int p = 0, row = 0; p < w; ++p)
    for (std::int64_t k = 0; k < send[p]; ++k, ++row)
      for (std::int64_t j = 0; j < cols; ++j) in.data<float>()[row * cols + j] = value(me, p, k, j);
  const std::int64_t capacity = n_recv + 2;  // rows past the counts stay untouched
  Tensor out(Shape{capacity, cols}, DType::F32, Device::cpu(), "dispatch.out");
  for (float& v : out.span<float>()) v = -7.0f;
  c.all_to_all_v(in, send, out, expected_recv);
  bool ok = true;
  std::int64_t row = 0;
  for (int p = 0; p < w; ++p)
    for (std::int64_t k = 0; k < expected_recv[p]; ++k, ++row)
      for (std::int64_t j = 0; j < cols; ++j)
        ok = ok && out.data<float>()[row * cols + j] == value(p, me, k, j);
  for (; row < capacity; ++row)
    for (std::int64_t j = 0; j < cols; ++j) ok = ok && out.data<float>()[row * cols + j] == -7.0f;
  log.expect(ok, std::string("all_to_all_v rows world=") + std::to_string(w) +
                     (rank0_sends_nothing ? " rank 0 sends nothing" : ""));
}

void check_helpers(Communicator& c, CheckLog& log) {
  const int w = c.world(), me = c.rank();
  double sum = 0;
  for (int r = 0; r < w; ++r) sum += r + 0.25;
  log.expect(c.all_reduce_f64(me + 0.25, ReduceOp::Sum) == sum, "all_reduce_f64 sum");
  log.expect(c.all_reduce_f64(me + 0.25, ReduceOp::Avg) == sum / w, "all_reduce_f64 avg");
  std::vector<std::int64_t> v{me, -me, 1};
  c.all_reduce_i64(v, ReduceOp::Max);
  log.expect(v == std::vector<std::int64_t>{w - 1, 0, 1}, "all_reduce_i64 max");
  log.expect(c.all_reduce_i64(std::int64_t{me + 1}, ReduceOp::Sum) == std::int64_t{w} * (w + 1) / 2,
             "all_reduce_i64 sum");
  c.barrier();
}

// One ZeRO-1 step over a padded flat buffer equals the replicated step, bit for bit.
void check_zero_step(Communicator& c, CheckLog& log) {
  const int w = c.world(), me = c.rank();
  Layout layout;
  layout.add("model.embed_tokens.weight", Shape{37, 5}, DType::F32);
  layout.add("model.norm.weight", Shape{100}, DType::F32);
  layout.add("lm_head.weight", Shape{3, 3, 3}, DType::F32);
  const FlatShards shards = flat_shards(layout, w, 64);
  const std::int64_t padded = shards.padded_elems();
  auto fill = [&](Tensor& flat, std::uint64_t seed, int rank) {
    const Tensor src = rank_input(DType::F32, padded, rank, seed, false);
    for (const Layout::Entry& e : layout.entries()) {  // gaps and padding stay zero
      const Range r = entry_elems(e);
      flat.slice(r.begin, r.end).copy_from(src.slice(r.begin, r.end));
    }
  };
  Tensor params(Shape{padded}, DType::F32, Device::cpu(), "params.flat");
  Tensor grads(Shape{padded}, DType::F32, Device::cpu(), "grads.flat");
  fill(params, 500, 0);  // replicated
  fill(grads, 501, me);  // per rank

  // Replicated reference: all_reduce the whole buffer, step everything.
  Tensor g_all = grads.clone();
  c.all_reduce(g_all, ReduceOp::Avg);
  Tensor p_ref = params.clone();
  for (std::int64_t i = 0; i < padded; ++i) p_ref.data<float>()[i] -= 0.5f * g_all.data<float>()[i];

  // ZeRO-1: reduce_scatter into the own block (in place), step it, all_gather in place.
  const Range mine = shards.padded_range(me);
  Tensor g_shard = grads.slice(mine.begin, mine.end);
  c.reduce_scatter(grads, g_shard, ReduceOp::Avg);
  Tensor p_shard = params.slice(mine.begin, mine.end);
  for (std::int64_t i = 0; i < mine.size(); ++i)
    p_shard.data<float>()[i] -= 0.5f * g_shard.data<float>()[i];
  c.all_gather(p_shard, params);
  log.expect(same_bits(params, p_ref),
             "ZeRO-1 step equals the replicated step world=" + std::to_string(w));
  bool pad_zero = true;
  for (std::int64_t i = shards.total(); i < padded; ++i)
    pad_zero = pad_zero && params.data<float>()[i] == 0.0f;
  log.expect(pad_zero, "ZeRO-1 padding stays zero");
}

}  // namespace

void run_collective_checks(const MakeCommunicator& make, CheckLog& log) {
  constexpr std::int64_t kDefaultChunk = CommunicatorConfig{}.chunk_elems;
  // Chunkings: one element per step (mostly empty blocks), 7 (uneven blocks, many
  // steps), the default (one step).
  for (std::int64_t chunk : {std::int64_t{1}, std::int64_t{7}, kDefaultChunk}) {
    auto c = make({ReductionMode::Deterministic, chunk});
    log.rank = c->rank();
    for (std::int64_t n : {1, 2, 3}) check_all_reduce(*c, false, n, log);
    for (std::int64_t m : {1, 5}) check_reduce_scatter(*c, false, m, log);
    if (chunk == 1) continue;
    check_all_reduce(*c, false, 131, log);
    check_reduce_scatter(*c, false, 40, log);
    if (chunk == kDefaultChunk) {
      check_all_reduce(*c, false, 4099, log);
      check_reduce_scatter(*c, false, 1000, log);
    }
  }
  {
    auto c = make({ReductionMode::Native, CommunicatorConfig{}.chunk_elems});
    for (std::int64_t n : {1, 3, 4099}) check_all_reduce(*c, true, n, log);
    for (std::int64_t m : {1, 300}) check_reduce_scatter(*c, true, m, log);
  }
  auto c = make({});
  for (std::int64_t m : {1, 33}) check_all_gather(*c, m, log);
  check_broadcast(*c, log);
  check_all_to_all_v(*c, log, false);
  check_all_to_all_v(*c, log, true);
  check_helpers(*c, log);
  check_zero_step(*c, log);

  // The deterministic checks above could not fail if order did not matter: with 3+
  // ranks the reversed fold of these inputs must differ somewhere.
  if (c->world() >= 3) {
    auto xs = all_inputs(DType::F32, 4099, c->world(), 4242, false);
    Tensor fwd(Shape{4099}, DType::F32), rev(Shape{4099}, DType::F32);
    reduce_in_rank_order(xs, ReduceOp::Sum, fwd);
    std::vector<Tensor> reversed(xs.rbegin(), xs.rend());
    reduce_in_rank_order(reversed, ReduceOp::Sum, rev);
    log.expect(!same_bits(fwd, rev), "test inputs are sensitive to the reduction order");
  }
}

std::uint64_t deterministic_digest(const MakeCommunicator& make) {
  auto c = make({});
  const int w = c->world(), me = c->rank();
  std::uint64_t h = 1469598103934665603ull;
  auto mix = [&](const Tensor& t) {
    const auto* b = static_cast<const unsigned char*>(t.raw());
    for (std::size_t i = 0; i < t.nbytes(); ++i) h = (h ^ b[i]) * 1099511628211ull;
  };
  Tensor a = rank_input(DType::F32, 50000, me, 9001, false);
  c->all_reduce(a, ReduceOp::Sum);
  mix(a);
  Tensor b = rank_input(DType::BF16, 4099, me, 9002, false);
  c->all_reduce(b, ReduceOp::Avg);
  mix(b);
  Tensor in = rank_input(DType::F32, w * 1000, me, 9003, false);
  Tensor shard(Shape{1000}, DType::F32), gathered(Shape{w * 1000}, DType::F32);
  c->reduce_scatter(in, shard, ReduceOp::Sum);
  c->all_gather(shard, gathered);
  mix(gathered);
  return h;
}

}  // namespace crucible::dist::testing
