#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder image.
# The autograder zip is unpacked in /autograder/source; the grader's own
# source is in /autograder/source/source.
set -euo pipefail

PYTHON=python3.11
SOURCE=/autograder/source
VENV=/autograder/venv
export DEBIAN_FRONTEND=noninteractive
export GRADER_CACHE_DIR=/autograder/cache

apt-get update

# The grader needs Python 3.11 and its venv module. Ubuntu 22.04 has both in
# its own archive; later releases need the deadsnakes PPA.
install_python() {
  if ! apt-get install -y python3.11 python3.11-venv; then
    apt-get install -y software-properties-common
    add-apt-repository -y ppa:deadsnakes/ppa
    apt-get update
    apt-get install -y python3.11 python3.11-venv
  fi
}
if ! "$PYTHON" -m venv --clear "$VENV" 2>/dev/null; then
  install_python
  "$PYTHON" -m venv --clear "$VENV"
fi

# bubblewrap confines student code where the container allows it; the
# grader warns and carries on where it does not.
apt-get install -y bubblewrap || echo "bubblewrap not installed; carrying on"

"$VENV/bin/python" -m pip install --upgrade pip
# Editable, so the grader finds reference_solution/ beside its package.
"$VENV/bin/python" -m pip install --editable "$SOURCE/source"

# Score the reference solution now, once, rather than for every submission.
"$VENV/bin/python" -m grader.gradescope_run --root /autograder \
  --rubric "$SOURCE/rubric.yaml" --reference-only \
  || echo "reference not scored at set-up; each submission will score it"
