#include "util/interrupt.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>

#include "util/files.h"

namespace ssmax {
namespace {

void remove_files_and_end(int signal) {
  if (hold_signal_during_commit(signal)) return;  // raised again when the files are in place
  remove_unfinished_files();
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  sigemptyset(&default_action.sa_mask);
  sigaction(signal, &default_action, nullptr);
  ::raise(signal);  // delivered when the handler returns: the process ends as killed by `signal`
}

std::atomic<int> pending_signal{0};
struct sigaction previous_int, previous_term;

void on_signal(int signal) {
  if (pending_signal.load() != 0 && signal == SIGINT) {
    static const char message[] = "\nsecond interrupt: exiting now without a checkpoint\n";
    (void)!::write(STDERR_FILENO, message, sizeof(message) - 1);
    remove_unfinished_files();  // a checkpoint being written
    ::_exit(130);
  }
  pending_signal.store(signal);
  static const char message[] = "\ninterrupt: finishing the current step, then writing a checkpoint "
                                "(press Ctrl-C again to exit at once)\n";
  (void)!::write(STDERR_FILENO, message, sizeof(message) - 1);
}

}  // namespace

void remove_unfinished_files_on_signal() {
  for (int signal : {SIGINT, SIGTERM, SIGHUP}) {
    struct sigaction current {};
    sigaction(signal, nullptr, &current);
    if (current.sa_handler == SIG_IGN) continue;
    struct sigaction action {};
    action.sa_handler = remove_files_and_end;
    sigemptyset(&action.sa_mask);
    sigaction(signal, &action, nullptr);
  }
}

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
