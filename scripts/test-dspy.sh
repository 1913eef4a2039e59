#!/usr/bin/env bash
# The capture, optimizer and contract tests against each supported DSPy release line.
#
#   bash scripts/test-dspy.sh            # 3.2, 3.3 and 3.4: the latest patch release of each
#   bash scripts/test-dspy.sh 3.3        # one line
#   TEST_DSPY_TESTS="tests/capture tests/contract" TEST_DSPY_MARK="not ray" \
#       bash scripts/test-dspy.sh 3.2 3.3  # a subset (what CI runs on the older lines)
#
# Each line gets a plain venv of its own under .venv-dspy/<line> (made with uv, reused
# while pyproject.toml is unchanged), with dspex installed from this checkout and
# `dspy~=<line>.0`. Prints the DSPy version, the pytest summary and the time of each;
# exits non-zero when any line fails.
set -euo pipefail
cd "$(dirname "$0")/.."

LINES=("$@")
[ ${#LINES[@]} -eq 0 ] && LINES=(3.2 3.3 3.4)
TESTS=()
for path in ${TEST_DSPY_TESTS:-tests/capture tests/optimizers tests/contract}; do
    [ -e "$path" ] && TESTS+=("$path")
done
PYTHON_VERSION="${PYTHON_VERSION:-3.11}"
export LITELLM_LOCAL_MODEL_COST_MAP=True  # no network: LiteLLM's bundled price list

command -v uv >/dev/null || { echo "test-dspy needs uv (https://docs.astral.sh/uv/)" >&2; exit 2; }

failed=()
summary=()
for line in "${LINES[@]}"; do
    venv=".venv-dspy/$line"
    stamp="$venv/.installed"
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        uv venv --quiet --allow-existing --python "$PYTHON_VERSION" "$venv"
        uv pip install --quiet --python "$venv/bin/python" -e ".[test]" "dspy~=$line.0"
        touch "$stamp"
    fi
    version=$("$venv/bin/python" -c "import dspy; print(dspy.__version__)")
    echo "== DSPy $version ($venv)"
    started=$(date +%s)
    # the benchmarks' own tests measure DSPy 3.4's engine path: not part of this contract
    if "$venv/bin/python" -m pytest -q -p no:cacheprovider --ignore-glob='*test_bench_*' \
        ${TEST_DSPY_MARK:+-m "$TEST_DSPY_MARK"} "${TESTS[@]}"; then
        status=ok
    else
        status=FAILED
        failed+=("$version")
    fi
    seconds=$(( $(date +%s) - started ))
    summary+=("DSPy $version: $status in ${seconds}s")
done
echo
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "test-dspy: failed with DSPy ${failed[*]}" >&2
    exit 1
fi
