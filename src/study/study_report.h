#pragma once
// A study's report: report.md, a self-contained report.html, report.json (every number in the tables) and the
// figures under figures/, in the study directory. Built from the files on disk alone (study_results.h), so it can be
// rebuilt at any time, also from a study cut short (it then says which tasks are missing). Torch-free.
//
// Statistics: per variant mean ± sample std over seeds; Welch's t-test for each difference (final losses pairwise,
// long-context loss per length and needle accuracy beyond the training length against the baseline); all tests of
// one report form one family, Holm–Bonferroni-adjusted at the study's alpha. Needle rates: the seed is the unit
// (each seed's rate, their mean with a 95 % t interval over seeds); pooled counts are descriptive only.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "study/study_spec.h"

namespace ssmax {

struct StudyReport {
  nlohmann::json summary;          // as written to report.json
  std::vector<std::string> files;  // paths written
};

StudyReport write_study_report(const StudySpec& spec, const std::vector<StudyRun>& runs);

}  // namespace ssmax
