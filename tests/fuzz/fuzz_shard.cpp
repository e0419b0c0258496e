// The token shard reader (data/shard.h): header checks and the memory-mapped ids.
// Property: a shard that opens has every id inside its vocabulary and exactly the size its header promises.
#include "data/shard.h"
#include "fuzz_common.h"

using namespace ssmax;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_scratch("shard.bin", fuzz::as_string(data, size));
  fuzz::expect_result_or_clear_error([&] {
    const TokenShard shard = TokenShard::open(path);
    for (size_t i = 0; i < shard.size(); ++i)
      if (shard.at(i) >= shard.vocab_size())
        fuzz::finding("id outside the vocabulary", std::to_string(shard.at(i)) + " at " + std::to_string(i));
  });
  return 0;
}
