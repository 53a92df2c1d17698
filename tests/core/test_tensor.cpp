// Tensors, views, arenas and the Philox RNG.
#include <cmath>
#include <cstdlib>
#include <set>
#include <string>

#include "core/arena.h"
#include "core/log.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "tests/catch.h"

using namespace crucible;

TEST_CASE("tensor allocation, views and copies", "[tensor]") {
  Tensor t(Shape{4, 3}, DType::F32, Device::cpu(), "t");
  REQUIRE(t.numel() == 12);
  REQUIRE(t.nbytes() == 48);
  for (float v : t.span<float>()) REQUIRE(v == 0.0f);  // fresh storage reads as zeros
  for (int i = 0; i < 12; ++i) t.data<float>()[i] = static_cast<float>(i);

  Tensor rows = t.slice(1, 3);
  REQUIRE(rows.shape() == Shape{2, 3});
  REQUIRE(rows.data<float>()[0] == 3.0f);
  REQUIRE(rows.storage() == t.storage());  // a view shares storage

  Tensor r2 = t.row(2);
  REQUIRE(r2.shape() == Shape{3});
  REQUIRE(r2.data<float>()[1] == 7.0f);

  Tensor flat = t.reshape(Shape{12});
  flat.data<float>()[11] = -1.0f;
  REQUIRE(t.data<float>()[11] == -1.0f);

  Tensor c = t.clone();
  c.data<float>()[0] = 42.0f;
  REQUIRE(t.data<float>()[0] == 0.0f);  // a clone does not alias

  REQUIRE_THROWS_AS(t.data<double>(), Error);          // dtype mismatch
  REQUIRE_THROWS_AS(t.reshape(Shape{5, 3}), Error);    // numel mismatch
  REQUIRE_THROWS_AS(t.slice(2, 5), Error);             // out of range
  REQUIRE_THROWS_AS(Tensor(Shape{2}, DType::F32, Device::cuda(0)), Error);  // no CUDA in this build
}

// Tensor::empty's contents are unspecified; on the CPU they are zeros, and under
// CRUCIBLE_POISON_EMPTY=1 (the "model_poisoned" ctest run) NaN bytes on every device,
// while a plain Tensor and a copy still read as their values.
TEST_CASE("Tensor::empty: zeros on the CPU, NaN bytes when poisoned", "[tensor]") {
  const char* env = std::getenv("CRUCIBLE_POISON_EMPTY");
  const bool poisoned = env != nullptr && *env != '\0' && std::string(env) != "0";
  Tensor e = Tensor::empty(Shape{5, 7}, DType::F32, Device::cpu(), "e");
  for (float v : e.span<float>()) CHECK((poisoned ? std::isnan(v) : v == 0.0f));
  const Tensor z(Shape{3}, DType::F32, Device::cpu(), "z");
  for (float v : z.span<float>()) CHECK(v == 0.0f);
  for (float& v : e.span<float>()) v = 2.0f;
  const Tensor copy = e.clone();
  for (float v : copy.span<float>()) CHECK(v == 2.0f);
}

TEST_CASE("narrow float tensors expose raw codes", "[tensor]") {
  Tensor b(Shape{8}, DType::BF16);
  REQUIRE(b.data<std::uint16_t>() != nullptr);
  Tensor e(Shape{8}, DType::E4M3);
  REQUIRE(e.data<std::uint8_t>() != nullptr);
  REQUIRE_THROWS_AS(e.data<std::uint16_t>(), Error);
  Tensor v = b.view_as(DType::U8, Shape{16});
  REQUIRE(v.nbytes() == b.nbytes());
}

TEST_CASE("layout offsets are aligned and arenas line up", "[arena]") {
  Layout layout;
  layout.add("a", Shape{3}, DType::F32);
  layout.add("b", Shape{5, 7}, DType::F32);
  layout.add("c", Shape{1}, DType::F32);
  REQUIRE_THROWS_AS(layout.add("a", Shape{1}, DType::F32), Error);
  for (const auto& e : layout.entries()) REQUIRE(e.offset % Layout::kAlign == 0);
  REQUIRE(layout.at("b").offset == 256);
  REQUIRE(layout.total_bytes() == 512 + 4);

  Arena params(layout, Device::cpu(), "params");
  Arena grads(layout, Device::cpu(), "grads");
  params.view("b").data<float>()[34] = 1.5f;
  REQUIRE(params.view(1).data<float>()[34] == 1.5f);
  REQUIRE(grads.view("b").data<float>()[34] == 0.0f);
  REQUIRE(params.flat().nbytes() == layout.total_bytes());
  // The flat byte view sees the named view's bytes at its offset.
  const float* via_flat = reinterpret_cast<const float*>(params.flat().data<std::uint8_t>() + 256);
  REQUIRE(via_flat[34] == 1.5f);
  params.zero();
  REQUIRE(params.view("b").data<float>()[34] == 0.0f);

  Layout half = layout.with_dtype(DType::BF16);
  REQUIRE(half.at("b").dtype == DType::BF16);
  REQUIRE(half.entries().size() == 3);
}

TEST_CASE("scratch arena bumps, resets and reports overflow", "[arena]") {
  ScratchArena s(Device::cpu(), 1024, "acts");
  Tensor x = s.alloc("x", Shape{10}, DType::F32);
  Tensor y = s.alloc("y", Shape{10}, DType::F32);
  REQUIRE(y.byte_offset() == 256);
  REQUIRE(s.used() == 296);
  REQUIRE_THROWS_WITH(s.alloc("z", Shape{1000}, DType::F32), Catch::Contains("out of space") && Catch::Contains("z"));
  s.reset();
  REQUIRE(s.alloc("w", Shape{4}, DType::F32).byte_offset() == 0);
  REQUIRE(s.high_water() == 296);
}

TEST_CASE("philox4x32-10 matches the Random123 known-answer vectors", "[rng]") {
  // kat_vectors from Random123 1.09 (philox4x32 10 rounds).
  auto a = philox4x32({0, 0, 0, 0}, {0, 0});
  REQUIRE(a == std::array<std::uint32_t, 4>{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u});
  auto b = philox4x32({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu});
  REQUIRE(b == std::array<std::uint32_t, 4>{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu});
  auto c = philox4x32({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u});
  REQUIRE(c == std::array<std::uint32_t, 4>{0xd16cfe09u, 0x94fdcceb, 0x5001e420u, 0x24126ea1u});
}

TEST_CASE("rng streams are reproducible, resumable and distinct", "[rng]") {
  Rng a(7, 0), b(7, 0), other_stream(7, 1), other_seed(8, 0);
  std::vector<std::uint32_t> seq;
  for (int i = 0; i < 11; ++i) seq.push_back(a.next_u32());
  for (int i = 0; i < 11; ++i) REQUIRE(b.next_u32() == seq[i]);
  REQUIRE(other_stream.next_u32() != seq[0]);
  REQUIRE(other_seed.next_u32() != seq[0]);

  for (std::uint64_t pos : {0, 3, 4, 5, 9}) {
    Rng r(7, 0);
    r.set_position(pos);
    REQUIRE(r.next_u32() == seq[pos]);
  }

  Rng u(1);
  double sum = 0, sum2 = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    float x = u.normal();
    sum += x;
    sum2 += double(x) * x;
    float v = u.uniform();
    REQUIRE(v >= 0.0f);
    REQUIRE(v < 1.0f);
  }
  REQUIRE(std::abs(sum / n) < 0.03);              // mean 0 within ~4 standard errors
  REQUIRE(std::abs(sum2 / n - 1.0) < 0.05);        // variance 1
  std::set<std::uint64_t> seen;
  Rng k(3);
  for (int i = 0; i < 600; ++i) seen.insert(k.below(6));
  REQUIRE(seen == std::set<std::uint64_t>{0, 1, 2, 3, 4, 5});
}

TEST_CASE("progress line shows step, total, rate and metrics", "[log]") {
  REQUIRE(format_duration(5) == "0:05");
  REQUIRE(format_duration(125) == "2:05");
  REQUIRE(format_duration(3723) == "1:02:03");
  Progress p("sft", 400);
  p.update(120, {{"loss", 1.234}});
  std::string line = p.render();
  REQUIRE_THAT(line, Catch::Contains("sft") && Catch::Contains("120/400") &&
                         Catch::Contains("30%") && Catch::Contains("loss 1.234"));
  p.finish();
}
