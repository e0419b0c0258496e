// The launch environment a distributed run reads (RANK, WORLD_SIZE, ...): what it accepts, how it refuses.
// Training itself across processes is tested end to end in tests/cli/distributed.sh.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <string>

#include "dist/distributed.h"

namespace ssmax {
namespace {

// Sets the launcher's variables for one test and restores the previous values afterwards.
class LaunchVariables {
 public:
  explicit LaunchVariables(const std::map<std::string, std::string>& values) {
    for (const char* name : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                             "TORCHELASTIC_USE_AGENT_STORE"}) {
      const char* old = std::getenv(name);
      if (old) saved_[name] = old;
      unsetenv(name);
    }
    for (const auto& [name, value] : values) setenv(name.c_str(), value.c_str(), 1);
  }
  ~LaunchVariables() {
    for (const char* name : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                             "TORCHELASTIC_USE_AGENT_STORE"})
      unsetenv(name);
    for (const auto& [name, value] : saved_) setenv(name.c_str(), value.c_str(), 1);
  }

 private:
  std::map<std::string, std::string> saved_;
};

std::string usage_error(const std::map<std::string, std::string>& values) {
  LaunchVariables vars(values);
  try {
    read_launch_environment();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "(no error)";
}

const std::map<std::string, std::string> kTorchrun = {{"RANK", "3"},
                                                      {"WORLD_SIZE", "4"},
                                                      {"LOCAL_RANK", "1"},
                                                      {"LOCAL_WORLD_SIZE", "2"},
                                                      {"MASTER_ADDR", "10.0.0.1"},
                                                      {"MASTER_PORT", "29500"},
                                                      {"TORCHELASTIC_USE_AGENT_STORE", "True"}};

TEST(LaunchEnvironment, NoVariablesMeansOneProcess) {
  LaunchVariables vars({});
  const auto env = read_launch_environment();
  EXPECT_FALSE(env.launched);
  EXPECT_EQ(env.rank, 0);
  EXPECT_EQ(env.world_size, 1);
}

TEST(LaunchEnvironment, ReadsWhatTorchrunSets) {
  LaunchVariables vars(kTorchrun);
  const auto env = read_launch_environment();
  EXPECT_TRUE(env.launched);
  EXPECT_EQ(env.rank, 3);
  EXPECT_EQ(env.world_size, 4);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.local_world_size, 2);
  EXPECT_EQ(env.master_addr, "10.0.0.1");
  EXPECT_EQ(env.master_port, 29500);
  EXPECT_TRUE(env.agent_store);
}

TEST(LaunchEnvironment, RefusesIncompleteOrMalformedVariables) {
  EXPECT_NE(usage_error({{"RANK", "0"}}).find("WORLD_SIZE is missing"), std::string::npos);
  EXPECT_NE(usage_error({{"WORLD_SIZE", "2"}}).find("RANK is missing"), std::string::npos);
  EXPECT_NE(usage_error({{"RANK", "0"}, {"WORLD_SIZE", "two"}}).find("WORLD_SIZE=two is not an integer"),
            std::string::npos);
  EXPECT_NE(usage_error({{"RANK", "2"}, {"WORLD_SIZE", "2"}}).find("RANK=2 is not an integer in [0, 1]"),
            std::string::npos);
  EXPECT_NE(usage_error({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "1"}}).find("MASTER_ADDR is missing"),
            std::string::npos);
  EXPECT_NE(usage_error({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}}).find("MASTER_PORT is missing"),
            std::string::npos);
  EXPECT_NE(usage_error({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "70000"}})
                .find("MASTER_PORT=70000"),
            std::string::npos);
}

TEST(LaunchEnvironment, RanksOnOneMachineShareItsCoresAndKeepTheCpu) {
  LaunchVariables vars(kTorchrun);
  const auto& dist = Distributed::instance();  // not joined: these read the environment only
  EXPECT_FALSE(dist.active());
  EXPECT_EQ(dist.default_threads(16), 8);
  EXPECT_EQ(dist.default_threads(1), 1);
  EXPECT_EQ(dist.rank_device(torch::kCPU), torch::Device(torch::kCPU));
}

}  // namespace
}  // namespace ssmax
