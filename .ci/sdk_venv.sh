# Sourced by .ci/sdk and .ci/snippets: installs the generated Python SDK (sdks/python) into
# a fresh venv at $work/venv, its dependencies held to the pins in .ci/requirements.txt.

python3 -m venv "$work/venv"
pip=("$work/venv/bin/pip" install -q --disable-pip-version-check -c .ci/requirements.txt)
# Built by the pinned setuptools and wheel (no build isolation: nothing unpinned is fetched).
"${pip[@]}" setuptools wheel
# From a copy: the build leaves build/ and *.egg-info beside the sources.
cp -r sdks/python "$work/sdk"
"${pip[@]}" --no-build-isolation "$work/sdk"
