# twinengine: `make demo` and `make test` set everything up on a fresh machine.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PORT ?= 8000
HOST ?= 127.0.0.1
export TWINENGINE_HOME ?= $(CURDIR)/.twinengine

.PHONY: help install media-deps demo serve test test-postgres test-fast lint browser bench-search bench-recs bench-rank bench-exp bench-dub bench-assistant bench-soak clean

help:
	@echo "make demo    set up, load the bundled real catalog, serve the gallery on http://$(HOST):$(PORT)"
	@echo "make test    run the whole test suite (SQLite; Postgres too via .ci/run)"
	@echo "make lint    ruff"
	@echo "make bench-search|bench-recs|bench-rank|bench-exp|bench-dub|bench-assistant|bench-soak"

# The venv is rebuilt only when the dependency list or the pins change.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[all,test]'
	@touch $(STAMP)

install: $(STAMP) media-deps

# Browser tests drive Debian's Chromium (never a downloaded browser build).
browser:
	@test -x /usr/bin/chromium || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null) \
	  || echo "warning: could not install chromium; browser tests will be skipped"; }

# Dubbing needs Debian's ffmpeg, espeak-ng and Apertium (en<->es), and Resemblyzer's packaged
# speaker-encoder weights (pip --no-deps: its librosa/webrtcvad runtime is not used).
media-deps: $(STAMP)
	@command -v ffmpeg >/dev/null && command -v espeak-ng >/dev/null && test -e /usr/share/apertium/modes/eng-spa.mode || { \
	  echo "installing Debian's ffmpeg, espeak-ng and apertium-en-es for dubbing"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg espeak-ng apertium apertium-en-es >/dev/null) \
	  || echo "warning: could not install the dubbing tools; dubbing tests will be skipped"; }
	@$(BIN)/python -c "import importlib.util as u, sys; sys.exit(u.find_spec('resemblyzer') is None)" 2>/dev/null \
	  || $(BIN)/python -m pip install -q --no-deps resemblyzer==0.1.4 \
	  || echo "warning: could not install resemblyzer; use TWINENGINE_DUB_SPEAKER_ENCODER=mfcc"

demo: install
	$(BIN)/twinengine demo --host $(HOST) --port $(PORT)

serve: install
	$(BIN)/twinengine serve --host $(HOST) --port $(PORT)

test: install browser
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not browser and not slow"

test-postgres: install browser
	TWINENGINE_TEST_DB=postgres $(BIN)/python -m pytest -q -m "not browser"

lint: install
	$(BIN)/ruff check src tests bench

bench-search: install
	$(BIN)/python bench/search.py $(if $(BEIR),--beir $(BEIR),)

bench-recs: install
	$(BIN)/python bench/recs.py $(if $(ML100K),--ml100k $(ML100K),)

bench-rank: install
	$(BIN)/python bench/rank.py --users 12000 --days 14 --explore shuffle --swap-rate 0.3 --copy-usefulness 1.0 --eval-users 3000 --eval-days 1 $(if $(RANK_HOME),--home $(RANK_HOME),)

bench-exp: install
	$(BIN)/python bench/exp.py

bench-dub: install
	$(BIN)/python bench/dub.py

bench-assistant: install
	$(BIN)/python bench/assistant.py

# Needs a shared Postgres: make bench-soak DB=postgresql://postgres@127.0.0.1/te_soak [SOAK_ARGS="--kill"]
bench-soak: install
	$(BIN)/python bench/soak.py --database-url "$(DB)" $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .twinengine .pytest_cache
