// The util room's files: DurableFile (every published file: temp + fsync + rename, signals), input files, the run
// directory lock and the data hash.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "test_util.h"
#include "util/dir_lock.h"
#include "util/errors.h"
#include "util/files.h"
#include "util/hash.h"
#include "util/interrupt.h"

namespace ssmax {
namespace {

namespace fs = std::filesystem;

std::string scratch() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return test_dir("files-" + std::string(info->test_suite_name()) + "." + info->name());
}

void write(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

TEST(DataHash, KnownFnv1aValues) {
  EXPECT_EQ(hash_hex(hash_bytes("")), "cbf29ce484222325");
  EXPECT_EQ(hash_hex(hash_bytes("a")), "af63dc4c8601ec8c");
  EXPECT_EQ(hash_hex(hash_bytes("foobar")), "85944171f73967e8");
  EXPECT_EQ(Hasher64().update("foo").update("bar").hex(), "85944171f73967e8");  // streaming
}

TEST(DurableFile, ReplacesOnlyOnCommitAndLeavesNoTemporaryFile) {
  const std::string dir = scratch(), path = dir + "/notes.txt";
  write(path, "old");
  {
    DurableFile file(path);
    file.write("new text", 8);
    EXPECT_TRUE(fs::exists(file.temp_path()));
    EXPECT_EQ(read_file(path), "old");  // readers see the old file until the commit
  }                                     // abandoned: the old file stays, the temporary one goes
  EXPECT_EQ(read_file(path), "old");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
  DurableFile file(path);
  file.write("0123456789", 10);
  file.write_at(0, "ab", 2);
  file.commit();
  EXPECT_EQ(read_file(path), "ab23456789");
  EXPECT_THROW(file.write("x", 1), RuntimeFailure);
  write_file_atomic(path, "whole");
  EXPECT_EQ(read_file(path), "whole");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
}

TEST(DurableFile, FailuresNameTheFileAndKeepTheOldOne) {
  const std::string dir = scratch();
  const std::string msg = error_of([&] { write_file_atomic(dir + "/no/such/dir/x.json", "{}"); });
  EXPECT_NE(msg.find(dir + "/no/such/dir/x.json"), std::string::npos) << msg;
  write(dir + "/kept.pt", "old");
  const auto writer_fails = [&] {  // as the checkpoint writer when torch's archive fails
    DurableFile file(dir + "/kept.pt");
    file.write("new", 3);
    throw RuntimeFailure("writer failed");
  };
  EXPECT_THROW(writer_fails(), RuntimeFailure);
  EXPECT_EQ(read_file(dir + "/kept.pt"), "old");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
  EXPECT_TRUE(is_temporary_file_name("step_00000060.pt.tmp"));
  EXPECT_TRUE(is_temporary_file_name("latest.tmp.12345"));
  EXPECT_FALSE(is_temporary_file_name("step_00000060.pt"));
  EXPECT_FALSE(is_temporary_file_name("notes.tmp.txt"));
}

// A command stopped by SIGTERM while writing (eval, needle, export, compare, a checkpoint) dies as the signal would,
// and leaves neither the new files nor their temporary files; the old files stay as they were.
TEST(DurableFile, ASignalRemovesTheFilesBeingWrittenAndEndsTheProcess) {
  const std::string dir = scratch();
  write(dir + "/model.safetensors", "old weights");
  const pid_t child = ::fork();
  if (child == 0) {
    remove_unfinished_files_on_signal();
    DurableFile weights(dir + "/model.safetensors"), description(dir + "/model.config.json");
    weights.write("new weights", 11);
    description.write("{}", 2);
    DurableFile checkpoint(dir + "/step_00000002.pt");
    checkpoint.write("half a checkpoint", 17);
    ::raise(SIGTERM);  // the handler runs here, in the middle of all three
    ::_exit(0);        // not reached
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "exited with " << WEXITSTATUS(status) << " instead of dying by the signal";
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
  std::vector<std::string> left;
  for (const auto& entry : fs::directory_iterator(dir)) left.push_back(entry.path().filename().string());
  EXPECT_EQ(left, std::vector<std::string>{"model.safetensors"});
  EXPECT_EQ(read_file(dir + "/model.safetensors"), "old weights");

  // Committed together: both new. A file abandoned or committed is no longer listed, so a later signal removes
  // nothing of it.
  {
    DurableFile weights(dir + "/model.safetensors"), description(dir + "/model.config.json");
    weights.write("new weights", 11);
    description.write("{}", 2);
    DurableFile::commit_together({&weights, &description});
  }
  remove_unfinished_files();
  EXPECT_EQ(read_file(dir + "/model.safetensors"), "new weights");
  EXPECT_EQ(read_file(dir + "/model.config.json"), "{}");
}

// commit_together under fire: a process that replaces a pair of files over and over, stopped by SIGTERM at 20
// moments, always leaves both files from the same round (without the hold, a signal between the two renames, which
// are a directory sync apart, leaves one of each).
TEST(DurableFile, FilesCommittedTogetherAreNeverHalfReplacedByASignal) {
  const std::string dir = scratch(), weights = dir + "/m.safetensors", description = dir + "/m.config.json";
  for (int trial = 0; trial < 20; ++trial) {
    write(weights, "0");
    write(description, "0");
    const pid_t child = ::fork();
    if (child == 0) {
      remove_unfinished_files_on_signal();
      for (int round = 1;; ++round) {
        const std::string text = std::to_string(round);
        DurableFile a(weights), b(description);
        a.write(text.data(), text.size());
        b.write(text.data(), text.size());
        DurableFile::commit_together({&a, &b});
      }
    }
    ::usleep(static_cast<useconds_t>(3000 + 1700 * trial));  // 3 … 35 ms: some rounds done, one under way
    ::kill(child, SIGTERM);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << "trial " << trial;
    EXPECT_EQ(read_file(weights), read_file(description)) << "trial " << trial;
    EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 2) << "trial " << trial;
  }
}

TEST(InputFile, RefusesWhatIsNotARegularFileNamingIt) {
  const std::string dir = scratch();
  write(dir + "/config.json", "{}");
  EXPECT_EQ(read_input_file(dir + "/config.json", "config"), "{}");
  const std::string missing =
      error_of([&] { read_input_file(dir + "/none.json", "config", "presets are in configs/"); });
  EXPECT_EQ(missing, dir + "/none.json: no such config file (presets are in configs/)");
  EXPECT_EQ(error_of([&] { read_input_file(dir, "study"); }), dir + ": is a directory; give a study file");
  ASSERT_EQ(::mkfifo((dir + "/fifo").c_str(), 0644), 0);
  // Opening a FIFO for reading would wait for a writer forever: refused before any open.
  EXPECT_NE(error_of([&] { read_input_file(dir + "/fifo", "config"); }).find("is not a regular file"),
            std::string::npos);
  EXPECT_THROW(read_input_file(dir + "/fifo", "config"), UsageError);
}

TEST(RunDirLock, SecondProcessIsRefusedAndTheLockDiesWithItsHolder) {
  const std::string dir = scratch();
  hold_run_dir_lock(dir);
  hold_run_dir_lock(dir);  // again in the same process: a no-op, not a deadlock or a refusal
  // Another process trying the same directory: refused, naming this one.
  const pid_t child = ::fork();
  if (child == 0) {
    int code = 3;
    try {
      hold_run_dir_lock(dir);
      code = 0;
    } catch (const UsageError& e) {
      const std::string m = e.what();
      code = m.find("in use by another process (pid " + std::to_string(::getppid())) != std::string::npos ? 1 : 2;
    } catch (...) {
    }
    ::_exit(code);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1) << "0: not refused, 2: message without the holder's pid, 3: other error";
  // A holder that dies (here: exits without releasing anything) leaves the directory free.
  const std::string other = dir + "-other";
  fs::create_directories(other);
  const pid_t holder = ::fork();
  if (holder == 0) {
    hold_run_dir_lock(other);
    ::_exit(0);
  }
  ASSERT_EQ(::waitpid(holder, &status, 0), holder);
  EXPECT_NO_THROW(hold_run_dir_lock(other));
}

}  // namespace
}  // namespace ssmax
