#!/usr/bin/env bash
# The whole test suite: install what is missing, build, run every test (unit and command-line).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/lib/env.sh
# What only the tests need: clang and libFuzzer for the fuzz harnesses (tests/fuzz/, scripts/fuzz.sh), clang-format
# for the formatting check (tests/cli/format.sh).
install_missing_packages clang-14 libclang-rt-14-dev clang-format-14
# Test-only Python packages, into the torch environment: TensorBoard's own reader checks our event files;
# transformers loads `export --format hf` directories (the version its modeling code targets), with sentencepiece
# to read their tokenizer.model (with protobuf, which tensorboard brings).
python=$SSMAX_TORCH_PYTHON
"$python" -c "import tensorboard" 2>/dev/null || "$python" -m pip install --quiet --progress-bar off tensorboard==2.21.0
"$python" -c "import transformers, sentencepiece; assert transformers.__version__ == '4.57.6'" 2>/dev/null ||
  "$python" -m pip install --quiet --progress-bar off transformers==4.57.6 sentencepiece==0.2.1
bash scripts/build.sh
rm -rf build/test-tmp
cd build
ctest -j2 --output-on-failure --timeout 900
