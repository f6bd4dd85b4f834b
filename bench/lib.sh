# Sourced by the bench scripts. bench_build <script-name> <ninja targets...>: make sure $B is a
# release build with -Dbench=true (set it up, or reconfigure one that is not), then build the
# targets, showing the log's tail and exiting 1 if that fails. Uses $B and $PY when set.
bench_build() {
  local name=$1 log
  shift
  B=${B:-build-bench}
  PY=${PY:-/usr/bin/python3}
  log=$B/$name-build.log
  if [ ! -f "$B"/build.ninja ]; then
    meson setup "$B" -Dbench=true --buildtype=release >/dev/null
  elif ! $PY - "$B" <<'PYEOF'; then
import json, sys
opts = {o["name"]: o["value"] for o in json.load(open(sys.argv[1] + "/meson-info/intro-buildoptions.json"))}
sys.exit(0 if opts.get("bench") and opts.get("buildtype") == "release" else 1)
PYEOF
    meson configure "$B" -Dbench=true -Dbuildtype=release >/dev/null
  fi
  if ! ninja -C "$B" "$@" >"$log" 2>&1; then
    tail -30 "$log" >&2
    echo "$name: build failed (full log: $log)" >&2
    exit 1
  fi
}
