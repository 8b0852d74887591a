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
# of Debian trixie (the image's release; older keyring packages lack them). And the engine's
# default seccomp profile, for `stratbox doctor --seccomp`: moby's
# profiles/seccomp/default.json as Debian ships it in golang-github-docker-docker-dev, in the
# version whose upstream release is the engine's (else apt's candidate). Only that file is
# extracted, with the package version beside it: installing the package would pull in some
# 250 Go source packages.
MOBY_PACKAGE := golang-github-docker-docker-dev
MOBY_SECCOMP := /usr/local/share/stratbox/moby-seccomp
MOBY_PROFILE := ./usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json

host-packages:
	@command -v mmdebstrap >/dev/null || { \
	    echo "stratbox: installing mmdebstrap (needed to build the container image)"; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null; }
	@test -e /usr/share/keyrings/debian-archive-trixie-stable.gpg || { \
	    echo "stratbox: updating debian-archive-keyring (the image is built from Debian trixie)"; \
	    apt-get update -qq && apt-get install -y -qq debian-archive-keyring >/dev/null; }
	@test -e $(MOBY_SECCOMP)/default.json || { \
	    set -e; \
	    engine=$$(docker version --format '{{.Server.Version}}' 2>/dev/null | sed 's/[-+~].*//'); \
	    apt-cache show $(MOBY_PACKAGE) >/dev/null 2>&1 || apt-get update -qq; \
	    version=$$(apt-cache madison $(MOBY_PACKAGE) | awk '{print $$3}' | grep -m1 "^$$engine[-+~]" || true); \
	    echo "stratbox: extracting the engine's default seccomp profile from $(MOBY_PACKAGE) $${version:-(candidate)} (engine $${engine:-unknown})"; \
	    tmp=$$(mktemp -d); chmod 755 $$tmp; \
	    (cd $$tmp && apt-get download -qq $(MOBY_PACKAGE)$${version:+=$$version} 2>/dev/null); \
	    deb=$$(ls $$tmp/*.deb); mkdir -p $(MOBY_SECCOMP); \
	    dpkg-deb --fsys-tarfile $$deb | tar -xO $(MOBY_PROFILE) > $(MOBY_SECCOMP)/default.json.new; \
	    dpkg-deb --showformat='$${Package} $${Version}\n' -W $$deb > $(MOBY_SECCOMP)/source; \
	    mv $(MOBY_SECCOMP)/default.json.new $(MOBY_SECCOMP)/default.json; rm -rf $$tmp; }

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --all-targets --features test-docker -- -D warnings
	RUSTDOCFLAGS=-Dwarnings $(CARGO) doc --release --no-deps --lib

bench: guest image
	$(CARGO) bench

clean:
	rm -rf wasm/build
	$(CARGO) clean
