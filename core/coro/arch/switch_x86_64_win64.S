/* Context switch for x86-64, Microsoft ABI (Windows, mingw-w64).
 *
 * void *weft__switch(void **save_sp, void *to_sp, void *value)
 *   rcx = where to store this context's stack pointer
 *   rdx = the stack pointer of the context to enter
 *   r8  = the value to hand over; it comes out in rax on the other side
 *
 * Saved on the stack of the context being left, lowest address first:
 *   xmm6..xmm15 (160 bytes, all 128 bits), FP control slot (8 bytes:
 *   MXCSR at +0, x87 CW at +4; used if WEFT_FP_CONTROL), TEB FiberData,
 *   DeallocationStack, StackLimit, StackBase, r15 r14 r13 r12 rsi rdi rbx
 *   rbp, return address.
 * That is the callee-saved set of the Windows x64 ABI (rbx, rbp, rdi, rsi,
 * r12-r15, xmm6-xmm15, rsp; MXCSR control bits and x87 CW as an option) plus
 * the TEB stack fields (gs:0x08 StackBase, gs:0x10 StackLimit, gs:0x20
 * FiberData, gs:0x1478 DeallocationStack). Windows and wine judge SEH frames,
 * guard-page faults and __chkstk probes by those fields, so each context
 * carries its own. No red zone on Win64: everything is pushed below rsp
 * before it is stored.
 *
 * Dispatch is pop + jmp (see switch_x86_64_sysv.S). With WEFT_FP_CONTROL the
 * FP words are saved and loaded on every switch (see there for the cost).
 */
#include "weft_config.h"

    .text
    .p2align 4
    .globl weft__switch
    .def weft__switch; .scl 2; .type 32; .endef
weft__switch:
    pushq %rbp
    pushq %rbx
    pushq %rdi
    pushq %rsi
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    pushq %gs:0x08   /* StackBase */
    pushq %gs:0x10   /* StackLimit */
    pushq %gs:0x1478 /* DeallocationStack */
    pushq %gs:0x20   /* FiberData */
    subq $168, %rsp  /* 16-byte aligned from here: 12 pushes after the call */
    movaps %xmm6, 0(%rsp)
    movaps %xmm7, 16(%rsp)
    movaps %xmm8, 32(%rsp)
    movaps %xmm9, 48(%rsp)
    movaps %xmm10, 64(%rsp)
    movaps %xmm11, 80(%rsp)
    movaps %xmm12, 96(%rsp)
    movaps %xmm13, 112(%rsp)
    movaps %xmm14, 128(%rsp)
    movaps %xmm15, 144(%rsp)
#if WEFT_FP_CONTROL
    stmxcsr 160(%rsp)
    fnstcw 164(%rsp)
#endif
    movq %rsp, (%rcx)
    movq %rdx, %rsp
#if WEFT_FP_CONTROL
    ldmxcsr 160(%rsp)
    fldcw 164(%rsp)
#endif
    movaps 0(%rsp), %xmm6
    movaps 16(%rsp), %xmm7
    movaps 32(%rsp), %xmm8
    movaps 48(%rsp), %xmm9
    movaps 64(%rsp), %xmm10
    movaps 80(%rsp), %xmm11
    movaps 96(%rsp), %xmm12
    movaps 112(%rsp), %xmm13
    movaps 128(%rsp), %xmm14
    movaps 144(%rsp), %xmm15
    addq $168, %rsp
    popq %gs:0x20
    popq %gs:0x1478
    popq %gs:0x10
    popq %gs:0x08
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rsi
    popq %rdi
    popq %rbx
    popq %rbp
    popq %rcx
    movq %r8, %rax
    jmp *%rcx

/* The first frame of every coroutine: entered by weft__switch's jmp with
 * rsp (16-byte aligned) at a null return address, where the unwinder
 * stops; rbx = the C entry, r12 = its argument, rax = the value. Reserves
 * the 32-byte home area and calls the entry, which never returns. */
    .p2align 4
    .globl weft__coro_trampoline
    .def weft__coro_trampoline; .scl 2; .type 32; .endef
    .seh_proc weft__coro_trampoline
weft__coro_trampoline:
    subq $32, %rsp
    .seh_stackalloc 32
    .seh_endprologue
    xorl %ebp, %ebp
    movq %r12, %rcx
    movq %rax, %rdx
    callq *%rbx
    ud2
    .seh_endproc
