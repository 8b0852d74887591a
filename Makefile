# stratbox — the two set-up commands:
#
#   make demo   build everything (guest, binary, container image) and run the examples
#   make test   build everything and run the whole test suite (what CI runs)
#
# Other targets: guest, build, image, lint, bench, clean.

CARGO   ?= cargo
BIN     := target/release/stratbox
EXAMPLE := examples/strategies/sma_crossover.py
PANDAS  := examples/strategies/sma_pandas.py
PRICES  := examples/data/prices.json

.PHONY: demo test guest build image host-packages lint bench clean

demo: guest build image
	$(BIN) run $(EXAMPLE) --input $(PRICES)
	$(BIN) run $(PANDAS) --input $(PRICES)

test: guest image lint
	$(CARGO) test --release --features test-docker

# The wasm guest: CPython for WASI with the runner, pre-initialised (pinned componentize-py).
guest:
	wasm/build.sh

build:
	$(CARGO) build --release

# The container image, built from Debian packages (no registry needed). Needs mmdebstrap.
image: build host-packages
	$(BIN) image build

# Host tools the image build uses, from Debian's archive: mmdebstrap, and the archive keys
# of Debian trixie (the image's release; older keyring packages lack them).
host-packages:
	@command -v mmdebstrap >/dev/null || { \
	    echo "stratbox: installing mmdebstrap (needed to build the container image)"; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null; }
	@test -e /usr/share/keyrings/debian-archive-trixie-stable.gpg || { \
	    echo "stratbox: updating debian-archive-keyring (the image is built from Debian trixie)"; \
	    apt-get update -qq && apt-get install -y -qq debian-archive-keyring >/dev/null; }

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --all-targets --features test-docker -- -D warnings
	RUSTDOCFLAGS=-Dwarnings $(CARGO) doc --release --no-deps --lib

bench: guest image
	$(CARGO) bench

clean:
	rm -rf wasm/build
	$(CARGO) clean
