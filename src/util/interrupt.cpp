#include "util/interrupt.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>

namespace ssmax {
namespace {

std::atomic<int> pending_signal{0};
struct sigaction previous_int, previous_term;

void on_signal(int signal) {
  if (pending_signal.load() != 0 && signal == SIGINT) {
    static const char message[] = "\nsecond interrupt: exiting now without a checkpoint\n";
    (void)!::write(STDERR_FILENO, message, sizeof(message) - 1);
    ::_exit(130);
  }
  pending_signal.store(signal);
  static const char message[] = "\ninterrupt: finishing the current step, then writing a checkpoint "
                                "(press Ctrl-C again to exit at once)\n";
  (void)!::write(STDERR_FILENO, message, sizeof(message) - 1);
}

}  // namespace

InterruptGuard::InterruptGuard() {
  pending_signal.store(0);
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, &previous_int);
  sigaction(SIGTERM, &action, &previous_term);
}

InterruptGuard::~InterruptGuard() {
  sigaction(SIGINT, &previous_int, nullptr);
  sigaction(SIGTERM, &previous_term, nullptr);
}

bool InterruptGuard::requested() { return pending_signal.load() != 0; }
int InterruptGuard::signal_number() { return pending_signal.load(); }
void InterruptGuard::adopt(int signal) { pending_signal.store(signal); }
int InterruptGuard::exit_code() { return 128 + (pending_signal.load() != 0 ? pending_signal.load() : SIGINT); }

}  // namespace ssmax
