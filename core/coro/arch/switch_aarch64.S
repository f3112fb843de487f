/* Context switch for AArch64 (AAPCS64: Linux, the BSDs, macOS).
 *
 * void *weft__switch(void **save_sp, void *to_sp, void *value)
 *   x0 = where to store this context's stack pointer
 *   x1 = the stack pointer of the context to enter
 *   x2 = the value to hand over; it comes out in x0 on the other side
 *
 * Saved in 176 bytes on the stack of the context being left:
 *   [0..79] x19-x28, [80] x29 (frame pointer), [88] x30 (return address),
 *   [96..159] d8-d15, [160] FPCR (if WEFT_FP_CONTROL), [168] padding.
 * That is the callee-saved set of AAPCS64 (x19-x29, sp, and the low 64
 * bits of v8-v15) plus x30, where the switch returns to. FPCR is not
 * callee-saved in AAPCS64; with WEFT_FP_CONTROL each coroutine carries its
 * own anyway, like MXCSR on x86-64, and it is written only when it differs.
 * x18 (the platform register on Apple and Windows) is never touched.
 *
 * A fresh context is built by coro.c so that the first switch into it
 * returns to weft__coro_trampoline with x19 = the C entry, x20 = its first
 * argument and x0 = the value.
 */
#include "weft_config.h"

#if defined(__APPLE__)
#define SYM(x) _##x
#define FUNC(x) .private_extern SYM(x); .globl SYM(x); SYM(x):
#define END(x)
#else
#define SYM(x) x
#define FUNC(x) .globl x; .hidden x; .type x, %function; x:
#define END(x) .size x, . - x
#endif

    .text
    .p2align 4
FUNC(weft__switch)
    .cfi_startproc
    sub sp, sp, #176
    .cfi_def_cfa_offset 176
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
#if WEFT_FP_CONTROL
    mrs x9, fpcr
    str x9, [sp, #160]
#endif
    mov x10, sp
    str x10, [x0]
    mov sp, x1
#if WEFT_FP_CONTROL
    ldr x10, [sp, #160]
    cmp x9, x10
    b.eq 1f
    msr fpcr, x10
1:
#endif
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    add sp, sp, #176
    .cfi_def_cfa_offset 0
    mov x0, x2
    ret
    .cfi_endproc
END(weft__switch)

/* The first frame of every coroutine. x29 = x30 = 0 ends the frame-record
 * chain, .cfi_undefined x30 ends it for CFI unwinders. The entry function
 * never returns (it switches away for good); if it did, brk. */
    .p2align 4
FUNC(weft__coro_trampoline)
    .cfi_startproc
    .cfi_undefined x30
    mov x1, x0
    mov x0, x20
    mov x29, xzr
    mov x30, xzr
    blr x19
    brk #0
    .cfi_endproc
END(weft__coro_trampoline)

#if defined(__linux__) && defined(__ELF__)
    .section .note.GNU-stack, "", %progbits
#endif
