#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: apt libraries for offscreen EGL, a venv, pinned pip packages.
# Re-runs are instant unless pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

need_apt=()
for lib in libEGL.so.1 libGL.so.1 libOSMesa.so; do
  ldconfig -p 2>/dev/null | grep -q "$lib" || need_apt+=("$lib")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "[setup] installing EGL/GL libraries (missing: ${need_apt[*]})"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libegl1 libgl1 libosmesa6 >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.robotlearn-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing robotlearn and pinned dependencies (torch 2.13.0 CPU, mujoco 3.8.1, ...)"
  .venv/bin/python -m pip install -q --upgrade pip 2>/dev/null
  # torch first and pinned: an unpinned resolve would pull GBs of CUDA wheels.
  .venv/bin/python -m pip install -q "torch==2.13.0" 2> >(grep -v "^WARNING: Location" >&2)
  .venv/bin/python -m pip install -q -e ".[test,import,ray,bench,robosuite,gym-hil]" 2> >(grep -v "^WARNING: Location" >&2)
  echo "$want" > "$stamp"
fi
