#pragma once
// SIGINT/SIGTERM during training: the first asks the loop to stop after the current step (it then
// writes a checkpoint and says how to resume); a second SIGINT exits at once.
namespace ssmax {

class InterruptGuard {
 public:
  InterruptGuard();   // installs the handlers
  ~InterruptGuard();  // restores the previous ones
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

  static bool requested();
  static int signal_number();  // the signal that asked to stop, 0 if none
};

}  // namespace ssmax
