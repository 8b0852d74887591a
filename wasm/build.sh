#!/usr/bin/env bash
# Builds the wasm guest, wasm/build/stratbox-guest.wasm, from runner.py, guest_app.py and
# modules.txt with the pinned componentize-py (installed into .venv on first use), then
# drops its debug names (strip_names.py): the same guest with them, for profilers that
# should show CPython's function names, is kept as wasm/build/stratbox-guest.names.wasm
# (run it with STRATBOX_GUEST=wasm/build/stratbox-guest.names.wasm).
#
#   wasm/build.sh            build if any input changed
#   wasm/build.sh --force    build unconditionally
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
wasm="$root/wasm"
out="$wasm/build/stratbox-guest.wasm"
venv="$root/.venv"
cpy="$venv/bin/componentize-py"
want_version=$(sed -n 's/^componentize-py==\([^ ]*\).*/\1/p' "$wasm/requirements.txt")

if ! "$cpy" --version 2>/dev/null | grep -qx "componentize-py $want_version"; then
    echo "stratbox: installing componentize-py $want_version into $venv" >&2
    python3 -m venv "$venv" || {
        echo "stratbox: 'python3 -m venv' failed; on Debian or Ubuntu: apt-get install python3-venv" >&2
        exit 1
    }
    "$venv/bin/pip" install --quiet --require-hashes --no-deps -r "$wasm/requirements.txt"
fi

inputs=("$wasm/runner.py" "$wasm/guest_app.py" "$wasm/modules.txt" "$wasm/wit/world.wit"
    "$wasm/requirements.txt" "$wasm/strip_names.py" "$wasm/build.sh")
stamp="$wasm/build/inputs.sha256"
digest=$(cat "${inputs[@]}" | sha256sum | cut -d' ' -f1)
if [[ "${1:-}" != "--force" && -f "$out" && -f "$stamp" && "$(cat "$stamp")" == "$digest" ]]; then
    exit 0
fi

app="$wasm/build/app"
rm -rf "$app"
mkdir -p "$app"
cp "$wasm/runner.py" "$wasm/guest_app.py" "$app/"
# modules.txt -> a Python list the guest imports while it is pre-initialised.
python3 - "$wasm/modules.txt" "$app/guest_modules.py" <<'PY'
import sys
names = []
for line in open(sys.argv[1], encoding="utf-8"):
    entry = line.split("#", 1)[0].strip()
    # `!name` is refused and not carried; `name` and `-name` are carried.
    if entry and not entry.startswith("!"):
        names.append(entry.lstrip("-"))
with open(sys.argv[2], "w", encoding="utf-8") as out:
    out.write("# Generated from wasm/modules.txt by wasm/build.sh.\nMODULES = %r\n" % names)
PY

echo "stratbox: building the wasm guest (componentize-py $want_version)" >&2
# Run from the app folder with no virtualenv in the environment, so that nothing but the
# standard library and the app is bundled.
(cd "$app" && env -u VIRTUAL_ENV "$cpy" -d "$wasm/wit" -w runner componentize guest_app \
    -p "$app" -o "$out.tmp" >/dev/null)
python3 "$wasm/strip_names.py" "$out.tmp" "$out.stripped"
mv "$out.tmp" "$wasm/build/stratbox-guest.names.wasm"
mv "$out.stripped" "$out"
echo "$digest" > "$stamp"
echo "stratbox: guest ready: $out ($(du -h "$out" | cut -f1))" >&2
