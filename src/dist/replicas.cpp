#include "dist/replicas.h"

#include <spdlog/spdlog.h>

#include <cstdlib>

#include "dist/distributed.h"

namespace ssmax {

void broadcast_parameters(torch::nn::Module& model) {
  auto& dist = Distributed::instance();
  if (!dist.active()) return;
  torch::NoGradGuard no_grad;
  auto parameters = model.parameters();
  auto weights = torch::nn::utils::parameters_to_vector(parameters);
  dist.broadcast_from_main(weights, "weight broadcast from rank 0");
  int64_t offset = 0;
  for (auto& p : parameters) {
    p.copy_(weights.narrow(0, offset, p.numel()).view_as(p));
    offset += p.numel();
  }
}

void check_replicas_agree(torch::nn::Module& model, int64_t step) {
  auto& dist = Distributed::instance();
  if (!dist.active()) return;
  torch::NoGradGuard no_grad;
  const auto parameters = model.parameters();
  // Test hook (tests/cli/distributed.sh): nudges one weight on the rank named, as a bug or a bad GPU would.
  if (const char* rank = std::getenv("SSMAX_TEST_PERTURB_RANK"); rank && std::atoi(rank) == dist.rank())
    parameters.front().view(-1)[0] += 1e-3;
  auto checksum = torch::zeros({1}, torch::TensorOptions(torch::kLong).device(parameters.front().device()));
  for (const auto& p : parameters) checksum += p.contiguous().view(torch::kInt).to(torch::kLong).sum();
  auto low = checksum.clone(), high = checksum.clone();
  dist.all_reduce_min_max(low, high, "weight checksum");
  if (low.equal(high)) return;
  const auto sums = dist.gather("weight checksums", std::to_string(checksum.item<int64_t>()));
  std::string differing;
  for (size_t r = 1; r < sums.size(); ++r)
    if (sums[r] != sums[0]) differing += (differing.empty() ? "" : ", ") + std::to_string(r);
  throw RuntimeFailure(fmt::format("the weights of rank(s) {} differ from rank 0's at step {}: the ranks have drifted "
                                   "apart (no checkpoint written); resume from the last checkpoint",
                                   differing, step));
}

}  // namespace ssmax
