// tests/fuzz/standalone_driver.cpp: runs a libFuzzer target without libFuzzer.
//
// CI has g++ only, so each fuzz target also links this driver: it replays the seed
// corpus, then feeds deterministic mutations (bit flips, byte inserts/deletes,
// splices of two inputs, truncations) for a bounded number of iterations or
// seconds. Any crash or non-crucible exception fails the run. With clang the same
// targets build against real libFuzzer (see the targets' headers).
//   usage: fuzz_X CORPUS_DIR [--iterations N] [--seconds S] [--seed K]
#include <chrono>
#include <cstdint>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

std::string mutate(std::string s, const std::vector<std::string>& pool, std::mt19937_64& gen) {
  auto pick = [&](std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(gen() % n); };
  const int edits = 1 + static_cast<int>(gen() % 4);
  static const char* kTokens[] = {"{", "}", "[", "]", "\"", ",", ":", "\\u", "\\uD800", "1e999",
                                  "-0", "null", "true", "\xF0\x9F\x98\x80", "\xC0\xAF", "\x00"};
  for (int e = 0; e < edits; ++e) {
    switch (gen() % 6) {
      case 0:  // flip a bit
        if (!s.empty()) s[pick(s.size())] ^= static_cast<char>(1u << (gen() % 8));
        break;
      case 1:  // insert a random byte
        s.insert(s.begin() + static_cast<std::ptrdiff_t>(pick(s.size() + 1)), static_cast<char>(gen()));
        break;
      case 2:  // delete a range
        if (!s.empty()) {
          std::size_t at = pick(s.size());
          s.erase(at, 1 + pick(std::min<std::size_t>(8, s.size() - at)));
        }
        break;
      case 3: {  // insert a syntax token
        const char* t = kTokens[pick(std::size(kTokens))];
        s.insert(pick(s.size() + 1), std::string(t, t[0] ? std::strlen(t) : 1));
        break;
      }
      case 4: {  // splice with another input
        const std::string& o = pool[pick(pool.size())];
        if (!o.empty()) s = s.substr(0, pick(s.size() + 1)) + o.substr(pick(o.size()));
        break;
      }
      default:  // truncate
        s.resize(pick(s.size() + 1));
    }
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR [--iterations N] [--seconds S] [--seed K]\n", argv[0]);
    return 2;
  }
  long iterations = 20000;
  double seconds = 60;
  std::uint64_t seed = 1;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--iterations") iterations = std::atol(argv[i + 1]);
    else if (a == "--seconds") seconds = std::atof(argv[i + 1]);
    else if (a == "--seed") seed = std::strtoull(argv[i + 1], nullptr, 10);
  }
  std::vector<std::string> pool;
  for (const auto& entry : std::filesystem::directory_iterator(argv[1])) {
    std::ifstream in(entry.path(), std::ios::binary);
    pool.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  if (pool.empty()) {
    std::fprintf(stderr, "no seeds in %s\n", argv[1]);
    return 2;
  }
  for (const std::string& s : pool)
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
  std::mt19937_64 gen(seed);
  const auto start = std::chrono::steady_clock::now();
  long done = 0;
  for (; done < iterations; ++done) {
    if (done % 256 == 0 &&
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > seconds)
      break;
    std::string input = mutate(pool[gen() % pool.size()], pool, gen);
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
    if (done % 64 == 0 && input.size() < 4096) pool.push_back(std::move(input));  // grow the pool a little
  }
  std::printf("%s: %zu seeds, %ld mutated inputs, no crash\n", argv[0], pool.size(), done);
  return 0;
}
