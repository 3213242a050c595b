# The two commands in README.md. Both set up everything they need first.
export MUJOCO_GL ?= egl
.PHONY: setup demo test bench

setup:
	@./scripts/setup.sh

demo: setup
	.venv/bin/robotlearn pipeline

test: setup
	.venv/bin/python -m pytest -q

bench: setup
	.venv/bin/python benchmarks/sim_speed.py
