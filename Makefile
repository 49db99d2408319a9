.PHONY: run test lint bench clean

run:   ## set up and run the gateway (API + worker + embedded Redis), offline mock provider
	scripts/dev.sh

test:  ## set up and run every test (starts its own redis-server and gateway processes)
	scripts/test.sh

lint:  ## ruff and mypy
	scripts/bootstrap.sh
	.venv/bin/ruff check .
	.venv/bin/mypy

bench: ## the benchmark table (direct vs Orbyt vs LiteLLM), see bench/README.md
	scripts/bootstrap.sh
	.venv/bin/python bench/run.py

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache .hypothesis
