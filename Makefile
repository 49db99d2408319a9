.PHONY: run test lint format typecheck bench clean

run:       ## set up and run the gateway (API + worker + embedded Redis), offline mock provider
	scripts/dev.sh

test:      ## set up and run every test (starts its own redis-server and gateway processes)
	scripts/test.sh

lint:      ## ruff (check + format --check) and mypy; what CI runs first
	scripts/bootstrap.sh
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

format:    ## rewrite the tree in ruff's format and apply ruff's safe fixes
	scripts/bootstrap.sh
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

typecheck: ## mypy --strict on src/, relaxed on tests/
	scripts/bootstrap.sh
	.venv/bin/mypy

bench:     ## the benchmark table (direct, floor, Orbyt, LiteLLM), see bench/README.md
	scripts/bootstrap.sh
	.venv/bin/python bench/run.py

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache .hypothesis .coverage .coverage.* htmlcov
