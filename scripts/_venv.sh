# Sourced by scripts/*: make sure .venv exists with goalline (and, with "test", its test tools).
# Needs Python 3.11 or newer as python3 (or set PYTHON=/path/to/python3.11).
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Goalline needs Python 3.11 or newer; $python is $("$python" --version 2>&1)." >&2
  echo "Set PYTHON=/path/to/python3.11 and run again." >&2
  exit 1
fi
if [ ! -x "$root/.venv/bin/python" ]; then
  echo "Creating $root/.venv ..." >&2
  "$python" -m venv "$root/.venv"
fi
extra="$1"  # callers always pass it ("" for none): see scripts/demo
stamp="$root/.venv/.goalline-installed${extra:+-$extra}"
fresh() { [ -f "$1" ] && [ ! "$root/pyproject.toml" -nt "$1" ]; }
# An install with the test extras also satisfies a plain one.
if ! fresh "$stamp" && ! { [ -z "$extra" ] && fresh "$root/.venv/.goalline-installed-test"; }; then
  echo "Installing goalline${extra:+ with [$extra] extras} into .venv ..." >&2
  "$root/.venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -e "$root${extra:+[$extra]}"
  touch "$stamp"
fi
