#!/bin/sh
# Build libkqueue (kqueue(2) over epoll) into PREFIX so weft's kqueue backend
# can be built and tested on Linux:  tests/kqueue/build_libkqueue.sh PREFIX
# Source: $WEFT_LIBKQUEUE_SRC (a source directory or a .tar.gz), else
# ../shared/third_party/libkqueue-*.tar.gz beside the repository. An
# installed libkqueue (pkg-config finds it) or an earlier build in PREFIX is
# reused. No source at all: one "skipped: ..." line and exit 77.
# Afterwards: PKG_CONFIG_PATH=PREFIX/lib/pkgconfig meson setup ...
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 PREFIX" >&2
    exit 2
fi
mkdir -p "$1"
prefix=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)

if pkg-config --exists libkqueue 2>/dev/null; then
    echo "libkqueue: installed $(pkg-config --modversion libkqueue) (pkg-config), not building"
    exit 0
fi
if [ -f "$prefix/lib/pkgconfig/libkqueue.pc" ]; then
    echo "libkqueue: already built in $prefix"
    exit 0
fi

src=${WEFT_LIBKQUEUE_SRC:-}
if [ -n "$src" ] && [ ! -e "$src" ]; then
    echo "libkqueue: WEFT_LIBKQUEUE_SRC=$src does not exist" >&2
    exit 1
fi
if [ -z "$src" ]; then
    for f in "$root"/../shared/third_party/libkqueue-*.tar.gz; do
        [ -f "$f" ] && src=$f
    done
fi
if [ -z "$src" ]; then
    echo "skipped: no libkqueue source (set WEFT_LIBKQUEUE_SRC or put libkqueue-*.tar.gz in ../shared/third_party) and none installed"
    exit 77
fi
if ! command -v cmake >/dev/null 2>&1; then
    echo "skipped: cmake is not installed (needed to build libkqueue from $src)"
    exit 77
fi

work="$prefix/.build"
rm -rf "$work"
mkdir -p "$work"
if [ -d "$src" ]; then
    srcdir=$src
else
    tar -xzf "$src" -C "$work"
    srcdir=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n 1)
fi
[ -f "$srcdir/CMakeLists.txt" ] || { echo "libkqueue: no CMakeLists.txt in $src" >&2; exit 1; }

log="$work/build.log"
if ! {
    cmake -S "$srcdir" -B "$work/obj" -DCMAKE_INSTALL_PREFIX="$prefix" \
        -DCMAKE_INSTALL_LIBDIR=lib -DCMAKE_BUILD_TYPE=RelWithDebInfo -DENABLE_TESTING=NO &&
        cmake --build "$work/obj" -j 2 &&
        cmake --install "$work/obj"
} >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "libkqueue: build failed (log: $log)" >&2
    exit 1
fi
echo "libkqueue: built from $src into $prefix"
