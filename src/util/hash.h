#pragma once
// A small, stable 64-bit content hash (FNV-1a) for cache keys and dataset fingerprints.
//
// Stable means: the same bytes give the same value on every machine and in every release, so a
// cache key computed today still finds yesterday's dataset. It is not cryptographic: it only has to
// tell apart the inputs one user feeds one tool, not resist someone forging collisions.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ssmax {

class Hasher64 {
 public:
  Hasher64& update(const void* data, size_t n);
  Hasher64& update(std::string_view bytes) { return update(bytes.data(), bytes.size()); }
  // Fixed-width little-endian encoding, so (1, 23) and (12, 3) hash differently.
  Hasher64& update_u64(uint64_t value);
  // Length-prefixed, so consecutive strings cannot run into each other.
  Hasher64& update_field(std::string_view bytes);
  uint64_t digest() const { return state_; }
  std::string hex() const;  // 16 lowercase hex digits

 private:
  uint64_t state_ = 0xcbf29ce484222325ULL;  // FNV-1a 64 offset basis
};

// splitmix64's finaliser: a tiny, well-mixed hash of one number, so that a batch drawn from (seed, step, …) is a pure
// function of them (the text loader's windows, the recall task's sequences) on every machine and standard library.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::string hash_hex(uint64_t value);  // 16 lowercase hex digits
uint64_t hash_bytes(std::string_view bytes);

// Streams a file's contents into `hasher` and returns the number of bytes read.
// Throws RuntimeFailure naming the file if it cannot be read.
uint64_t hash_file_into(Hasher64& hasher, const std::string& path);
uint64_t hash_file(const std::string& path);

}  // namespace ssmax
