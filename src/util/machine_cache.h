#pragma once
// Measurements of this machine kept between runs: the CPU's peak FLOP/s and which BLAS is faster (train/peak_flops.h,
// train/cpu_blas.h). One JSON object of key → value in $SSMAX_CACHE_DIR/machine_speed.json, else
// ~/.cache/ssmax-gpt/machine_speed.json. Keys name everything the figure depends on (CPU model, threads, libraries),
// so another machine or setting measures afresh. A damaged file counts as empty: measured again and rewritten.
#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace ssmax {

std::string machine_cache_path();

// The stored value, or nothing when the key (or a readable file) is missing.
std::optional<nlohmann::json> machine_cache_get(const std::string& key);

// Stores `value` under `key` and returns what is stored now. When `keep_existing_if` accepts the value another
// process stored first, that one wins and is returned instead (the file is locked for the read-modify-write): two
// processes that measured at once then use one answer. A cache that cannot be written is a warning, and `value` is
// returned.
nlohmann::json machine_cache_put(const std::string& key, const nlohmann::json& value,
                                 const std::function<bool(const nlohmann::json&)>& keep_existing_if = {});

}  // namespace ssmax
