/* Context switch for x86-64, System V ABI (Linux, the BSDs, macOS).
 *
 * void *weft__switch(void **save_sp, void *to_sp, void *value)
 * (and weft__switch_in / weft__switch_out below, the same with the two
 * stack pointers found in the coroutine)
 *   rdi = where to store this context's stack pointer
 *   rsi = the stack pointer of the context to enter
 *   rdx = the value to hand over; it comes out in rax on the other side
 *
 * Saved on the stack of the context being left, lowest address first:
 *   [FP control slot, if WEFT_FP_CONTROL] r15 r14 r13 r12 rbx rbp ret
 * That is exactly the callee-saved set of the psABI (rbx, rbp, r12-r15, rsp)
 * plus, with -Dfp_control=true, MXCSR (at +0 of the slot) and the x87
 * control word (at +4), whose control bits the psABI also calls callee-saved
 * (section 3.2.1); they are then saved and loaded on every switch, status
 * flags included, as boost.context does.
 *
 * Measured on the development VM (bench/switch, bench/RESULTS.md): 3.3 ns
 * per switch without the FP words, 6.0 ns with them (stmxcsr, fnstcw,
 * ldmxcsr, fldcw); comparing before loading was slower still (7.4 ns: the
 * read-back of stmxcsr/fnstcw stalls). Hence the default is off: the FP
 * environment belongs to the thread, and a coroutine that changes rounding
 * or exception masks restores them before it switches away.
 *
 * Dispatch is pop + jmp, not ret: the switch returns to a different call
 * site than the one that called it, and a ret would mispredict through the
 * return stack buffer every time (measured: 9.1 ns vs 2.5-3.5 ns).
 *
 * A fresh context is built by coro.c (arch_init_frame) so that the first
 * switch into it "returns" to weft__coro_trampoline with rbx = the C entry
 * function (the body itself, or coro_main in ASan/TSan builds), r12 = the
 * coroutine, rax = the value, and a null return address on the stack above
 * it.
 */
#include "weft_config.h"

#if defined(__APPLE__)
#define SYM(x) _##x
#define FUNC(x) .private_extern SYM(x); .globl SYM(x); SYM(x):
#define END(x)
#else
#define SYM(x) x
#define FUNC(x) .globl x; .hidden x; .type x, @function; x:
#define END(x) .size x, . - x
#endif

/* SWITCH(name, SAVE, LOAD, VAL): the switch, with this context's stack
 * pointer stored to SAVE, the other's loaded from LOAD and VAL handed over
 * in rax. Three entry points share it: weft__switch (the general form,
 * used by the tests), and weft__switch_in / weft__switch_out, which take
 * the coroutine and find sp_ (offset 0) and ret_sp_ (offset 8) in it
 * themselves, so resume and yield need no argument shuffling before the
 * tail call (coro_internal.h). Each has its own indirect jmp, so resume's
 * and yield's targets are predicted apart. */
#if WEFT_FP_CONTROL
#define FP_SAVE \
    subq $8, %rsp; \
    .cfi_adjust_cfa_offset 8; \
    stmxcsr (%rsp); \
    fnstcw 4(%rsp);
#define FP_LOAD \
    ldmxcsr (%rsp); \
    fldcw 4(%rsp); \
    addq $8, %rsp; \
    .cfi_adjust_cfa_offset -8;
#else
#define FP_SAVE
#define FP_LOAD
#endif

/* From the mov to rsp on, the CFI describes the other context's frame,
 * which has the same shape. */
#define SWITCH(name, SAVE, LOAD, VAL) \
    .p2align 4; \
FUNC(name) \
    .cfi_startproc; \
    pushq %rbp; \
    .cfi_adjust_cfa_offset 8; \
    pushq %rbx; \
    .cfi_adjust_cfa_offset 8; \
    pushq %r12; \
    .cfi_adjust_cfa_offset 8; \
    pushq %r13; \
    .cfi_adjust_cfa_offset 8; \
    pushq %r14; \
    .cfi_adjust_cfa_offset 8; \
    pushq %r15; \
    .cfi_adjust_cfa_offset 8; \
    FP_SAVE \
    movq %rsp, SAVE; \
    movq LOAD, %rsp; \
    FP_LOAD \
    popq %r15; \
    .cfi_adjust_cfa_offset -8; \
    popq %r14; \
    .cfi_adjust_cfa_offset -8; \
    popq %r13; \
    .cfi_adjust_cfa_offset -8; \
    popq %r12; \
    .cfi_adjust_cfa_offset -8; \
    popq %rbx; \
    .cfi_adjust_cfa_offset -8; \
    popq %rbp; \
    .cfi_adjust_cfa_offset -8; \
    popq %rcx; \
    .cfi_adjust_cfa_offset -8; \
    .cfi_register %rip, %rcx; \
    movq VAL, %rax; \
    jmp *%rcx; \
    .cfi_endproc; \
END(name)

    .text
/* weft__switch(save_sp = rdi, to_sp = rsi, value = rdx) */
SWITCH(weft__switch, (%rdi), %rsi, %rdx)
/* weft__switch_in(co = rdi, value = rsi): into co (resume) */
SWITCH(weft__switch_in, 8(%rdi), (%rdi), %rsi)
/* weft__switch_out(co = rdi, value = rsi): out of co (yield, finish) */
SWITCH(weft__switch_out, (%rdi), 8(%rdi), %rsi)

/* The first frame of every coroutine. Entered by weft__switch's jmp with
 * rsp pointing at a null "return address", which ends the frame chain for
 * unwinders that use it; .cfi_undefined rip ends it for CFI unwinders (gdb,
 * libunwind), and rbp = 0 for frame-pointer walkers (perf). The entry
 * function never returns (it switches away for good); if it did, ud2. */
    .p2align 4
FUNC(weft__coro_trampoline)
    .cfi_startproc
    .cfi_undefined %rip
    xorl %ebp, %ebp
    movq %r12, %rdi
    movq %rax, %rsi
    pushq %rbp /* align rsp to 16 for the call */
    .cfi_adjust_cfa_offset 8
    callq *%rbx
    /* Reached only when rbx is the body itself (coro_internal.h:
     * WEFT__DIRECT_ENTRY): r12 still holds the coroutine (callee-saved),
     * rax the body's return value; the finish never returns. */
    movq %r12, %rdi
    movq %rax, %rsi
    callq SYM(weft__coro_finish)
    ud2
    .cfi_endproc
END(weft__coro_trampoline)

#if defined(__linux__) && defined(__ELF__)
    .section .note.GNU-stack, "", @progbits
#endif
