#pragma once
// Where prepared datasets live and how they are found again.
//
// <dataset_dir>/<key>/ holds one dataset: tokenizer.model, train-NNNNNN.bin, val-NNNNNN.bin, train-documents.bin,
// val-documents.bin and meta.json, written
// last, so a directory without a valid meta.json is never trusted. The key hashes the sources' bytes as stored and
// every setting that changes the result. Computing it reads the whole corpus, so every build also records
// <dataset_dir>/.quick/<quick key> → key, where the quick key hashes paths, sizes and modification times instead:
// an unchanged corpus is found again without reading a byte, and a touched one is read (and its content key found
// again, or a new dataset built). Builds run in <dataset_dir>/.tmp-<quick key>-<pid>/ and are renamed into place.
#include <string>
#include <vector>

#include "config/config.h"
#include "data/prepare.h"
#include "data/sources.h"

namespace ssmax {

// 4: documents — each ends with the tokenizer's end-of-sequence id, and train-/val-documents.bin index where they
//    begin in each split (data/split_writer.h); 3: streamed build — documents never share a piece, split into
//    data.shard_tokens shards, tokenizer trained on a data.tokenizer.sample_mb sample; 2: .jsonl/.gz sources;
//    1: raw bytes, one train.bin and one val.bin. Formats 1-3 are read as documents whose boundaries are unknown.
constexpr int kDatasetFormat = 4;

std::string quick_key(const DataConfig& data, const std::vector<SourceFile>& files);
// `source_hashes[i]` is the hash of files[i]'s bytes as stored.
std::string content_key(const DataConfig& data, const std::vector<SourceFile>& files,
                        const std::vector<std::string>& source_hashes);

// The dataset directory the quick key was recorded for, if that dataset is complete; "" otherwise.
std::string find_by_quick_key(const std::string& dataset_dir, const std::string& quick);
void record_quick_key(const std::string& dataset_dir, const std::string& quick, const std::string& key);

// Complete = meta.json parses and every file it names is there. Anything less is a leftover.
bool dataset_complete(const std::string& dir);

// Removes the build directories of interrupted builds (their process is gone): a build restarts from the start.
void remove_interrupted_builds(const std::string& dataset_dir);

// The hash checkpoints record: the tokenizer model and every shard, each under its name. A split in one shard is
// hashed under the name format ≤ 2 gave it (train.bin, val.bin), so a dataset rebuilt with the same content keeps
// the fingerprint that older checkpoints recorded. `documents` (format 4: the two boundary indexes) come last, so a
// dataset without them hashes as before and one with another set of boundaries hashes differently.
std::string dataset_fingerprint(const std::string& dir, const std::string& model, const std::vector<std::string>& train,
                                const std::vector<std::string>& val, const std::vector<std::string>& documents = {});

}  // namespace ssmax
