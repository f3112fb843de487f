/* Test helper (x86-64 System V): loads every callee-saved register from
 * in[], calls weft__switch(save_sp, to_sp, value) directly (no C frame in
 * between that could save and restore them), then stores the registers into
 * out[] and returns the switch's result. Layout: rbx rbp r12 r13 r14 r15.
 *
 * uintptr_t weft_test_regs_switch(void **save_sp, void *to_sp, void *value,
 *                                 const uint64_t *in, uint64_t *out) */
#if defined(__APPLE__)
#define SYM(x) _##x
#else
#define SYM(x) x
#endif
/* Save the caller's callee-saved registers and out (r8), then load the six
 * from in[] (rcx). */
.macro LOAD_REGS
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    pushq %r8          /* out; rsp is now 16-byte aligned for the call */
    movq 0(%rcx), %rbx
    movq 8(%rcx), %rbp
    movq 16(%rcx), %r12
    movq 24(%rcx), %r13
    movq 32(%rcx), %r14
    movq 40(%rcx), %r15
.endm

/* Store the six into out[] and give the caller its registers back. */
.macro STORE_REGS_RET
    movq (%rsp), %rcx
    movq %rbx, 0(%rcx)
    movq %rbp, 8(%rcx)
    movq %r12, 16(%rcx)
    movq %r13, 24(%rcx)
    movq %r14, 32(%rcx)
    movq %r15, 40(%rcx)
    popq %r8
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
.endm

    .text
    .globl SYM(weft_test_regs_switch)
SYM(weft_test_regs_switch):
    LOAD_REGS
    call SYM(weft__switch)
    STORE_REGS_RET

/* The same around weft__switch_in (dir = 0) or weft__switch_out (else):
 *
 * uintptr_t weft_test_regs_switch_co(weft_coro *co, void *value, int dir,
 *                                    const uint64_t *in, uint64_t *out) */
    .globl SYM(weft_test_regs_switch_co)
SYM(weft_test_regs_switch_co):
    LOAD_REGS
    testl %edx, %edx
    jnz 1f
    call SYM(weft__switch_in)
    jmp 2f
1:
    call SYM(weft__switch_out)
2:
    STORE_REGS_RET
#if defined(__linux__) && defined(__ELF__)
    .section .note.GNU-stack, "", @progbits
#endif
