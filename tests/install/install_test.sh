#!/usr/bin/env bash
# The installed product, as a user gets it: `cmake --install` of each component into a temporary
# prefix, clients built against that prefix only (pkg-config with nothing but PKG_CONFIG_PATH,
# and find_package(coproc)), the installed coprocd serving them, the README's quick start run as
# written, and the Debian packages `make package` makes (their files and their Depends).
#
# Usage: install_test.sh SOURCE_DIR BUILD_DIR   (CMAKE, CPACK: the cmake and cpack to use)
#
# Every check runs even after one failed, so one run lists everything that is wrong; each failure
# prints "FAIL: ..." and the script exits 1 if there was any.
set -uo pipefail

src=$(realpath "$1")
build=$(realpath "$2")
cmake=${CMAKE:-cmake}
cpack=${CPACK:-cpack}
work=$(mktemp -d /tmp/coproc-install.XXXXXX)
prefix=$work/prefix
libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:PATH=//p' "$build/CMakeCache.txt")
libdir=${libdir:-lib}
model=$build/models/noop.onnx
daemon_pid=
quickstart_pgid=

cleanup() {
  [ -n "$daemon_pid" ] && kill -KILL "$daemon_pid" 2>/dev/null
  [ -n "$quickstart_pgid" ] && kill -KILL -- "-$quickstart_pgid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }
# A compiler or client that knows only what the test hands it: no stray include or library paths.
unset CPATH C_INCLUDE_PATH LIBRARY_PATH LD_LIBRARY_PATH PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR \
      COPROC_SOCKET

# ---- install each component -------------------------------------------------------------------
for component in sdk daemon; do
  if ! "$cmake" --install "$build" --prefix "$prefix" --component "$component" \
      > "$work/install-$component.log" 2>&1; then
    fail "cmake --install --component $component failed:"; cat "$work/install-$component.log"
  fi
done

expect_installed() {
  local what=$1; shift
  local missing=()
  for f in "$@"; do [ -e "$prefix/$f" ] || missing+=("$f"); done
  if ((${#missing[@]})); then fail "$what: not installed under the prefix: ${missing[*]}"
  else ok "$what installed"; fi
}
expect_installed "client SDK" include/coproc.h "$libdir/libcoproc.so" "$libdir/libcoproc.so.0" \
  "$libdir/cmake/coproc/coprocConfig.cmake" "$libdir/cmake/coproc/coprocConfigVersion.cmake" \
  "$libdir/cmake/coproc/coprocTargets.cmake" "$libdir/pkgconfig/coproc.pc"
expect_installed "daemon and tools" bin/coprocd bin/coproc-stat bin/coproc-bench \
  lib/systemd/system/coprocd.service share/coproc/coprocd.example.toml \
  share/doc/coproc/README.md share/doc/coproc/threat-model.md share/doc/coproc/install.md \
  libexec/coproc/ort_worker.py

# ---- the installed binaries need nothing from the build or source tree -------------------------
for exe in coprocd coproc-stat coproc-bench; do
  bin=$prefix/bin/$exe
  [ -x "$bin" ] || continue
  libs=$(ldd "$bin" 2>&1)
  if grep -q "not found" <<< "$libs"; then
    fail "$exe: a shared library is not found from the prefix:"; grep "not found" <<< "$libs"
  elif grep -qE "$build|$src" <<< "$libs"; then
    fail "$exe: loads a library from the build tree:"; grep -E "$build|$src" <<< "$libs"
  else ok "$exe: every shared library resolves outside the build tree"; fi
  # Paths of source files (__FILE__ in log and assert messages) are fine; any other path into the
  # trees is a runtime file (a kernel, a script) the installed binary would look for there.
  tree_paths=$(strings "$bin" | grep -E "^($src|$build)/" | grep -vE '\.(cc|h|hpp|c|cpp|inl)$')
  if [ -n "$tree_paths" ]; then fail "$exe: refers to files in the source or build tree:"; echo "$tree_paths"
  else ok "$exe: refers to no file in the source or build tree"; fi
done

# ---- the systemd unit as installed ---------------------------------------------------------------
unit=$prefix/lib/systemd/system/coprocd.service
if [ -f "$unit" ]; then
  if grep -q "^ExecStart=$prefix/bin/coprocd " "$unit"; then ok "unit: ExecStart runs the installed coprocd"
  else fail "unit: ExecStart is not $prefix/bin/coprocd:"; grep "^ExecStart=" "$unit"; fi
  if out=$(systemd-analyze verify "$unit" 2>&1) && [ -z "$out" ]; then ok "unit: systemd-analyze verify clean"
  else fail "unit: systemd-analyze verify:"; echo "$out"; fi
fi

# ---- a client built with pkg-config, PKG_CONFIG_PATH only ----------------------------------------
pc_flags=$(PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig pkg-config --cflags --libs coproc 2>&1)
echo "pkg-config --cflags --libs coproc: $pc_flags"
include_dir=$(sed -n 's/.*-I\([^ ]*\).*/\1/p' <<< "$pc_flags")
if [ -z "$include_dir" ] || [ "$(realpath -m "$include_dir")" != "$prefix/include" ]; then
  fail "pkg-config: -I does not name the prefix's include folder $prefix/include"
fi
if PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig \
    cc -o "$work/hello_pc" "$src/tools/examples/hello_client.c" \
       $(PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig pkg-config --cflags --libs coproc) \
       > "$work/cc.log" 2>&1; then
  ok "hello_client built with pkg-config"
else
  fail "cc \$(pkg-config --cflags --libs coproc) failed:"; cat "$work/cc.log"
fi

# ---- a client built with find_package(coproc) ------------------------------------------------------
mkdir -p "$work/cmake_client"
cat > "$work/cmake_client/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.16)
project(hello_cmake C)
find_package(coproc 0.1 REQUIRED)
add_executable(hello_cmake $src/tools/examples/hello_client.c)
target_link_libraries(hello_cmake PRIVATE coproc::coproc)
CMAKE
if "$cmake" -S "$work/cmake_client" -B "$work/cmake_client/build" -DCMAKE_PREFIX_PATH="$prefix" \
      -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF \
      > "$work/cmake_client.log" 2>&1 &&
   "$cmake" --build "$work/cmake_client/build" >> "$work/cmake_client.log" 2>&1; then
  found=$(sed -n 's/^coproc_DIR:PATH=//p' "$work/cmake_client/build/CMakeCache.txt")
  if [ "$found" = "$prefix/$libdir/cmake/coproc" ]; then ok "hello_client built with find_package(coproc)"
  else fail "find_package(coproc) found $found, not the prefix's package"; fi
else
  fail "a CMake project with find_package(coproc) did not build:"; cat "$work/cmake_client.log"
fi

# ---- both clients against the installed daemon -------------------------------------------------
socket=$work/run/coprocd.sock
mkdir -p "$work/run"
if [ -x "$prefix/bin/coprocd" ]; then
  "$prefix/bin/coprocd" --model "noop=$model" --socket "$socket" --http-listen off \
    > "$work/coprocd.log" 2>&1 &
  daemon_pid=$!
  for _ in $(seq 200); do
    [ -S "$socket" ] || ! kill -0 "$daemon_pid" 2>/dev/null && break
    sleep 0.05
  done
  if [ ! -S "$socket" ]; then
    fail "the installed coprocd did not start:"; cat "$work/coprocd.log"
  else
    ok "the installed coprocd serves $socket"
    run_client() {
      local name=$1; shift
      if out=$(COPROC_SOCKET=$socket timeout 30 "$@" noop 2>&1) &&
         grep -q "returned the 16 values it was sent" <<< "$out"; then ok "$name: $out"
      else fail "$name against the installed daemon: $out"; fi
    }
    [ -x "$work/hello_pc" ] && run_client "hello_client (pkg-config)" \
      env LD_LIBRARY_PATH="$prefix/$libdir" "$work/hello_pc"
    [ -x "$work/cmake_client/build/hello_cmake" ] && run_client "hello_client (find_package)" \
      "$work/cmake_client/build/hello_cmake"
    if out=$(timeout 30 "$prefix/bin/coproc-stat" --socket "$socket" 2>&1) && grep -q noop <<< "$out"; then
      ok "the installed coproc-stat shows the daemon's model"
    else fail "the installed coproc-stat against the installed daemon:"; echo "$out"; fi
    kill -TERM "$daemon_pid"
    if wait "$daemon_pid"; then ok "coprocd drained and exited 0 on SIGTERM"
    else fail "coprocd exited $? on SIGTERM:"; cat "$work/coprocd.log"; fi
  fi
  daemon_pid=
fi

# ---- the README's quick start, as written -------------------------------------------------------
# The block between <!-- quickstart --> and <!-- /quickstart -->, run from a folder that looks like
# the repository root (build/ and tools/ link to the real ones) with HOME in the scratch folder.
quickstart=$(awk '/<!-- quickstart -->/{on=1; next} /<!-- \/quickstart -->/{on=0} on' "$src/README.md" |
             awk '/^```sh$/{on=1; next} /^```$/{on=0} on')
if [ -z "$quickstart" ]; then
  fail "README.md has no \`\`\`sh block between <!-- quickstart --> and <!-- /quickstart -->"
else
  mkdir -p "$work/repo" "$work/home"
  ln -s "$build" "$work/repo/build"
  ln -s "$src/tools" "$work/repo/tools"
  (cd "$work/repo" && HOME=$work/home exec setsid -w timeout 90 bash -euo pipefail -c "$quickstart") \
    > "$work/quickstart.log" 2>&1 &
  quickstart_pgid=$!
  if wait "$quickstart_pgid" && grep -q "returned the 16 values it was sent" "$work/quickstart.log"; then
    ok "README quick start ran as written"
  else
    fail "README quick start, run as written:"; echo "$quickstart"; echo "--- output:"
    cat "$work/quickstart.log"
  fi
  kill -KILL -- "-$quickstart_pgid" 2>/dev/null
  quickstart_pgid=
fi

# ---- the Debian packages ------------------------------------------------------------------------
if [ ! -f "$build/CPackConfig.cmake" ]; then
  fail "no $build/CPackConfig.cmake: the build does not make packages"
elif ! (cd "$work" && "$cpack" --config "$build/CPackConfig.cmake" -B "$work/packages") \
    > "$work/cpack.log" 2>&1; then
  fail "cpack failed:"; cat "$work/cpack.log"
fi
deb_daemon=$(ls "$work"/packages/coproc_*.deb 2>/dev/null | head -1)
deb_sdk=$(ls "$work"/packages/libcoproc-dev_*.deb 2>/dev/null | head -1)

# expect_deb DEB WHAT -- PATH... [! PATH...]: PATH must (before !) or must not (after !) be in it.
expect_deb() {
  local deb=$1 what=$2; shift 3
  local listing; listing=$(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|')
  local want=1 wrong=()
  for f in "$@"; do
    if [ "$f" = "!" ]; then want=0; continue; fi
    if grep -qxF "$f" <<< "$listing"; then ((want)) || wrong+=("has $f")
    else ((want)) && wrong+=("lacks $f"); fi
  done
  if ((${#wrong[@]})); then fail "$what: ${wrong[*]}"; else ok "$what: its files"; fi
}
expect_depends() {
  local deb=$1 what=$2; shift 2
  local depends; depends=$(dpkg-deb -f "$deb" Depends)
  echo "$what Depends: $depends"
  for pattern in "$@"; do
    grep -qE "(^|, |\| )$pattern" <<< "$depends" || fail "$what: Depends lacks $pattern"
  done
}

if [ -z "$deb_daemon" ]; then fail "cpack made no coproc_*.deb (daemon): $(ls "$work/packages" 2>&1)"
else
  expect_deb "$deb_daemon" "coproc.deb" -- /usr/bin/coprocd /usr/bin/coproc-stat /usr/bin/coproc-bench \
    /usr/lib/systemd/system/coprocd.service /usr/share/coproc/coprocd.example.toml \
    /usr/share/doc/coproc/README.md /usr/share/doc/coproc/threat-model.md /usr/share/doc/coproc/install.md \
    "/usr/$libdir/libcoproc.so.0" /usr/libexec/coproc/ort_worker.py \
    ! /usr/include/coproc.h "/usr/$libdir/libcoproc.so"
  expect_depends "$deb_daemon" "coproc.deb" "libuv1" "libopenblas" "libnuma1" "libstdc\+\+6" \
    "ocl-icd-libopencl1" "libclblast1"
  mkdir -p "$work/deb_daemon"
  dpkg-deb -x "$deb_daemon" "$work/deb_daemon"
  grep -q "^ExecStart=/usr/bin/coprocd " "$work/deb_daemon/usr/lib/systemd/system/coprocd.service" \
    2>/dev/null || fail "coproc.deb: the unit's ExecStart is not /usr/bin/coprocd"
fi
if [ -z "$deb_sdk" ]; then fail "cpack made no libcoproc-dev_*.deb (client SDK): $(ls "$work/packages" 2>&1)"
else
  expect_deb "$deb_sdk" "libcoproc-dev.deb" -- /usr/include/coproc.h "/usr/$libdir/libcoproc.so" \
    "/usr/$libdir/cmake/coproc/coprocConfig.cmake" "/usr/$libdir/cmake/coproc/coprocConfigVersion.cmake" \
    "/usr/$libdir/cmake/coproc/coprocTargets.cmake" "/usr/$libdir/pkgconfig/coproc.pc" \
    ! /usr/bin/coprocd "/usr/$libdir/libcoproc.so.0"
  version=$(dpkg-deb -f "$deb_sdk" Version)
  expect_depends "$deb_sdk" "libcoproc-dev.deb" "coproc \(= $version\)"
fi

echo
if ((failures)); then echo "install_test: $failures check(s) failed"; exit 1; fi
echo "install_test: all checks passed"
