#!/bin/sh
# What a user of the installed library gets (./dev's install stage):
#   1. meson install of BUILD into a staging directory: the headers, the
#      shared library with its versioned links, the static one, weft.pc and
#      the tools;
#   2. tests/install/hello.c (the README's program) built against the
#      staged copy with pkg-config, and run;
#   3. the same program in a project that uses weft as a meson subproject.
# Usage: check.sh SOURCE_DIR BUILD_DIR
set -eu
src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
fail() { echo "install check: $*" >&2; exit 1; }

stage="$work/stage"
meson install -C "$build" --destdir "$stage" --quiet >"$work/install.log" 2>&1 ||
    { cat "$work/install.log" >&2; fail "meson install failed"; }
pc=$(find "$stage" -name weft.pc | head -n 1)
[ -n "$pc" ] || fail "no weft.pc installed"
libdir=$(dirname "$(dirname "$pc")")
for f in libweft.a libweft.so libweft.so.0; do
    [ -e "$libdir/$f" ] || fail "$f not installed in $libdir"
done
[ -L "$libdir/libweft.so" ] && [ -L "$libdir/libweft.so.0" ] ||
    fail "libweft.so and libweft.so.0 should be links to the versioned library"
soname=$(readelf -d "$libdir/libweft.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libweft.so.0 ] || fail "SONAME is '$soname', expected libweft.so.0"
for f in weft.h weft/loop.h weft/net.h; do
    [ -n "$(find "$stage" -path "*/include/$f")" ] || fail "header $f not installed"
done
[ -n "$(find "$stage" -name weft-info -type f)" ] || fail "weft-info not installed"

# pkg-config: the sysroot prefix makes the staged .pc point into the stage.
flags=$(PKG_CONFIG_SYSROOT_DIR="$stage" PKG_CONFIG_PATH="$(dirname "$pc")" \
    pkg-config --cflags --libs weft) || fail "pkg-config --cflags --libs weft failed"
# shellcheck disable=SC2086
${CC:-cc} -std=c11 -Wall -Wextra -Werror "$src/tests/install/hello.c" -o "$work/hello" $flags ||
    fail "the README program does not build against the installed library"
out=$(LD_LIBRARY_PATH="$libdir" "$work/hello") || fail "the installed program failed"
[ "$out" = "hello from weft, 1 ms later" ] || fail "unexpected output: $out"
echo "install: headers, libweft.so -> libweft.so.0 -> $(readlink "$libdir/libweft.so.0"), weft.pc, tools; pkg-config program ok"

# A meson subproject (the subprojects/ entry may be a link to the tree).
proj="$work/app"
mkdir -p "$proj/subprojects"
ln -s "$src" "$proj/subprojects/weft"
cp "$src/tests/install/hello.c" "$proj/"
cat >"$proj/meson.build" <<'MESON'
project('hello', 'c', default_options: ['c_std=c11'])
weft = dependency('weft', fallback: 'weft', default_options: ['tests=false', 'bench=false',
  'examples=false', 'default_library=static'])
executable('hello', 'hello.c', dependencies: weft)
MESON
(cd "$proj" && meson setup build --force-fallback-for=weft >"$work/sub.log" 2>&1 &&
    ninja -C build hello >>"$work/sub.log" 2>&1) || { tail -n 30 "$work/sub.log" >&2; fail "the subproject build failed"; }
out=$("$proj/build/hello") || fail "the subproject program failed"
[ "$out" = "hello from weft, 1 ms later" ] || fail "unexpected output from the subproject build: $out"
echo "subproject: dependency('weft', fallback: 'weft') builds and runs the program"
