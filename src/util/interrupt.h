#pragma once
// SIGINT/SIGTERM during training: the first asks the loop to stop after the current step (it then
// writes a checkpoint and says how to resume); a second SIGINT exits at once (130).
namespace ssmax {

// For the whole process, from main(): SIGINT, SIGTERM and SIGHUP (each unless ignored, as SIGINT is for a job
// started with & by a script) remove the temporary files being written (util/files.h), then end the process as the
// signal would have, so a shell sees 130/143/129. An InterruptGuard takes over while it lives.
void remove_unfinished_files_on_signal();

class InterruptGuard {
 public:
  InterruptGuard();   // installs the handlers
  ~InterruptGuard();  // restores the previous ones
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

  static bool requested();
  static int signal_number();  // the signal that asked to stop, 0 if none
  // What a command that stopped early exits with, as a shell reports a process killed by that signal:
  // 128 + the signal (130 for SIGINT, 143 for SIGTERM; 130 when none was recorded).
  static int exit_code();
  // Records `signal` as if it had arrived, without the message: a rank of a distributed run stopping because
  // another rank was signalled exits with the same code.
  static void adopt(int signal);
};

}  // namespace ssmax
