#!/bin/sh
# Builds the coroutine and generator suites (tests/coro) for the other two
# ABIs weft switches contexts on, and runs them:
#   aarch64   aarch64-linux-gnu-gcc, run under qemu-aarch64 -L /usr/aarch64-linux-gnu
#   win64     x86_64-w64-mingw32-gcc, run under wine64
# each with -Dfp_control on and off (WEFT_FP_CONTROL=1/0). The sources are
# compiled directly (no meson cross files): the coroutine layer is four C
# files and one .S per ABI, and check.h's standalone runner replaces
# Criterion. A missing cross compiler or emulator skips that target (set
# CROSS_STRICT=1 to make it fail instead). Exits non-zero if any build or
# test fails. Usage: tests/cross/run.sh [aarch64|win64]...
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${CROSS_BUILD_DIR:-$root/build-cross}
wine=${WINE:-/usr/lib/wine/wine64}
qemu=${QEMU:-qemu-aarch64}
targets=${*:-aarch64 win64}
mkdir -p "$out"

cflags="-std=c11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -fno-strict-aliasing -DWEFT_CHECK_STANDALONE"
incs="-I$root/include -I$root/core -I$root/core/coro"
lib="$root/core/coro/coro.c $root/core/coro/stack.c $root/core/coro/generator.c"
tests="$root/tests/coro/test_coro.c $root/tests/coro/test_gen.c $root/tests/coro/check_main.c"

fail=0
skip() {
    echo "cross: skip $1: $2"
    [ "${CROSS_STRICT:-0}" = 1 ] && fail=1
}

config() { # dir fp
    mkdir -p "$1"
    printf '#define WEFT_VERSION "cross"\n#define WEFT_HAVE_VALGRIND 0\n#define WEFT_FP_CONTROL %s\n' \
        "$2" >"$1/weft_config.h"
}

run_one() { # name cc arch-sources exe-suffix extra-flags runner...
    name=$1 cc=$2 asm=$3 suffix=$4 extra=$5
    shift 5
    for fp in 1 0; do
        dir=$out/$name-fp$fp
        config "$dir" $fp
        exe=$dir/test_coro$suffix
        # shellcheck disable=SC2086
        if ! $cc $cflags $extra -I"$dir" $incs $lib $asm $tests -o "$exe" -lm 2>"$dir/build.log"; then
            echo "cross: $name fp_control=$fp: BUILD FAILED"
            cat "$dir/build.log"
            fail=1
            continue
        fi
        if "$@" "$exe" >"$dir/run.log" 2>&1; then
            echo "cross: $name fp_control=$fp: $(tail -n 1 "$dir/run.log")"
        else
            echo "cross: $name fp_control=$fp: FAILED"
            cat "$dir/run.log"
            fail=1
        fi
    done
}

for t in $targets; do
    case $t in
    aarch64)
        if ! command -v aarch64-linux-gnu-gcc >/dev/null; then
            skip aarch64 "no aarch64-linux-gnu-gcc"
        elif ! command -v "$qemu" >/dev/null; then
            skip aarch64 "no $qemu"
        else
            run_one aarch64 aarch64-linux-gnu-gcc \
                "$root/core/coro/arch/switch_aarch64.S $root/tests/coro/regs_aarch64.S" "" "-pthread" \
                "$qemu" -L /usr/aarch64-linux-gnu
        fi
        ;;
    win64)
        if ! command -v x86_64-w64-mingw32-gcc >/dev/null; then
            skip win64 "no x86_64-w64-mingw32-gcc"
        elif [ ! -x "$wine" ]; then
            skip win64 "no $wine"
        else
            # Static: wine then needs no mingw DLLs. mingw's own stdio for %Lf.
            WINEDEBUG=-all
            export WINEDEBUG
            run_one win64 x86_64-w64-mingw32-gcc \
                "$root/core/coro/arch/switch_x86_64_win64.S $root/tests/coro/regs_x86_64_win64.S" .exe \
                "-static -D__USE_MINGW_ANSI_STDIO=1" "$wine"
        fi
        ;;
    *)
        echo "cross: unknown target $t (aarch64, win64)"
        fail=1
        ;;
    esac
done
exit $fail
