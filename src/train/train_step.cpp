#include "train/train_step.h"

#include <cmath>
#include <limits>
#include <numeric>

#include "dist/distributed.h"
#include "dist/gradient_sync.h"
#include "dist/replicas.h"
#include "train/optimizer.h"
#include "train/precision.h"

namespace ssmax {

void StepPhaseClock::wait_for_device() const {
  if (device_.is_cuda()) torch::cuda::synchronize();
}

void StepPhaseClock::start() {
  wait_for_device();
  seconds_.fill(0);
  mark_ = std::chrono::steady_clock::now();
}

void StepPhaseClock::lap(StepPhase phase) {
  wait_for_device();
  const auto now = std::chrono::steady_clock::now();
  seconds_[static_cast<size_t>(phase)] += std::chrono::duration<double>(now - mark_).count();
  mark_ = now;
}

double StepPhaseClock::total() const { return std::accumulate(seconds_.begin(), seconds_.end(), 0.0); }

TrainStep::TrainStep(Session& session) : s_(session) {
  for (const auto& p : s_.model->parameters())
    if (p.requires_grad()) trainable_.push_back(p);
  const double clip = s_.config.optim.grad_clip;
  clip_ = clip > 0 ? clip : std::numeric_limits<double>::infinity();
  auto& dist = Distributed::instance();
  if (dist.active()) {
    broadcast_parameters(*s_.model);
    gradient_sync_ = std::make_unique<GradientSync>(trainable_, dist,
                                                    static_cast<int64_t>(s_.config.distributed.bucket_mb * (1 << 20)),
                                                    s_.config.distributed.overlap);
  }
}

TrainStep::~TrainStep() = default;

StepResult TrainStep::run(int64_t step, bool prefetch_next, const std::vector<double>& values_to_sum,
                          StepPhaseClock* clock) {
  auto lap = [clock](StepPhase phase) {
    if (clock) clock->lap(phase);
  };
  auto& dist = Distributed::instance();
  const int accum = s_.config.train.grad_accum_steps;
  const bool bf16 = uses_bf16(s_.config.train);
  const int micro_batches = accum * dist.world_size();
  if (gradient_sync_) gradient_sync_->zero_grad();
  else s_.optimizer->zero_grad();
  // The step's scalars stay on the device until one read below (a read waits for the device to finish).
  torch::Tensor loss_sum = torch::zeros({1}, torch::TensorOptions(torch::kDouble).device(s_.device));
  int64_t tokens = 0;
  for (int micro = 0; micro < accum; ++micro) {
    const int global_micro = dist.rank() * accum + micro;
    const TrainBatch batch = s_.objective->train_batch(step, global_micro, s_.device);
    tokens += batch.tokens();
    lap(StepPhase::Data);
    torch::Tensor loss;
    {
      AutocastScope autocast(s_.device, bf16);  // the forward pass only, as torch.autocast is used
      loss = s_.objective->train_loss(s_.model, batch) / micro_batches;
    }
    lap(StepPhase::Forward);
    // The next micro-batch is gathered (and on a GPU copied) while this one runs backward.
    const bool last_micro = micro + 1 == accum;
    if (!last_micro) s_.objective->prefetch(step, global_micro + 1, s_.device);
    else if (prefetch_next) s_.objective->prefetch(step + 1, dist.rank() * accum, s_.device);
    if (gradient_sync_ && last_micro) {
      dist.heartbeat(step + 1, "gradient all-reduce");
      gradient_sync_->arm();
    }
    loss.backward();
    loss_sum += loss.detach().to(torch::kDouble);
    lap(StepPhase::Backward);
  }
  StepResult result;
  torch::Tensor totals = loss_sum;
  if (gradient_sync_) {
    result.sync_seconds = gradient_sync_->finish();
    // One small all-reduce: the global loss, the global tokens and the caller's values.
    std::vector<double> counts{static_cast<double>(tokens)};
    counts.insert(counts.end(), values_to_sum.begin(), values_to_sum.end());
    totals = torch::cat({loss_sum, torch::tensor(counts, torch::kDouble).to(s_.device)});  // NCCL: on the GPU
    dist.all_reduce_sum(totals, "loss all-reduce");
    lap(StepPhase::Backward);
  }
  const torch::Tensor norm = clip_grad_norm(trainable_, clip_);
  // The one read of the step: the loss, the distributed counts and the gradient norm.
  const torch::Tensor scalars = torch::cat({totals, norm.to(totals.device(), torch::kDouble).reshape({1})}).cpu();
  const double* values = scalars.data_ptr<double>();
  result.loss = values[0];
  result.grad_norm = values[scalars.numel() - 1];
  if (gradient_sync_) {
    result.tokens = static_cast<int64_t>(values[1]);
    result.summed.assign(values + 2, values + 2 + values_to_sum.size());
  } else {
    result.tokens = tokens;
    result.summed = values_to_sum;
  }
  // A non-finite update would put the damage into the weights (and the next checkpoint).
  result.updated = std::isfinite(result.loss) && std::isfinite(result.grad_norm);
  if (result.updated) s_.optimizer->step();
  lap(StepPhase::Update);
  return result;
}

}  // namespace ssmax
