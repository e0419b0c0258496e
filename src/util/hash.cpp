#include "util/hash.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "util/errors.h"

namespace ssmax {

namespace {
constexpr uint64_t kFnvPrime = 0x100000001b3ULL;
}

Hasher64& Hasher64::update(const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h = state_;
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= kFnvPrime;
  }
  state_ = h;
  return *this;
}

Hasher64& Hasher64::update_u64(uint64_t value) {
  unsigned char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>(value >> (8 * i));
  return update(bytes, sizeof bytes);
}

Hasher64& Hasher64::update_field(std::string_view bytes) {
  update_u64(bytes.size());
  return update(bytes);
}

std::string Hasher64::hex() const { return hash_hex(state_); }

std::string hash_hex(uint64_t value) {
  static const char digits[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, value >>= 4) out[i] = digits[value & 0xf];
  return out;
}

uint64_t hash_bytes(std::string_view bytes) { return Hasher64().update(bytes).digest(); }

uint64_t hash_file_into(Hasher64& hasher, const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw RuntimeFailure(path + ": cannot open for reading: " + std::strerror(errno));
  std::vector<char> buffer(1 << 20);
  uint64_t total = 0;
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), f)) > 0) {
    hasher.update(buffer.data(), n);
    total += n;
  }
  const bool failed = std::ferror(f) != 0;
  const int saved_errno = errno;
  std::fclose(f);
  if (failed) throw RuntimeFailure(path + ": read error: " + std::strerror(saved_errno));
  return total;
}

uint64_t hash_file(const std::string& path) {
  Hasher64 hasher;
  hash_file_into(hasher, path);
  return hasher.digest();
}

}  // namespace ssmax
