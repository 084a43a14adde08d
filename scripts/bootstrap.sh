#!/usr/bin/env bash
# Create .venv if missing and install the project's dependencies into it.
#   scripts/bootstrap.sh        runtime dependencies (requirements.txt)
#   scripts/bootstrap.sh dev    plus test tools (requirements-dev.txt) and Chromium for browser tests
# Re-running is cheap: pip runs only when a requirements file changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=.venv
REQ=requirements.txt
[ "${1:-}" = dev ] && REQ=requirements-dev.txt

if [ ! -x "$VENV/bin/python" ]; then
  echo "bootstrap: creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi

# torch first, pinned: an unpinned or transitive torch would pull several GB of CUDA packages.
TORCH=$(grep -E '^torch==' requirements.txt | head -1)
if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '${TORCH#torch==}')" 2>/dev/null; then
  echo "bootstrap: installing $TORCH"
  "$VENV/bin/python" -m pip install -q "$TORCH"
fi

stamp="$VENV/.stamp-$(basename "$REQ" .txt)"
digest=$(cat requirements.txt "$REQ" | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
  echo "bootstrap: installing $REQ"
  "$VENV/bin/python" -m pip install -q -r "$REQ"
  echo "$digest" > "$stamp"
fi

# test-only system packages from Debian: chromium (browser tests), haproxy (the replicas recipe's test)
if [ "${1:-}" = dev ]; then
  missing=()
  command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing+=(chromium fonts-noto-color-emoji)
  command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "bootstrap: installing Debian ${missing[*]} for the tests"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
      echo "bootstrap: ${missing[*]} not found; the tests that need them will be skipped"
    fi
  fi
fi
