/* Test helper (x86-64 Microsoft ABI): loads every callee-saved register
 * from in[], calls weft__switch(save_sp, to_sp, value) directly, stores the
 * registers into out[] and returns the switch's result. Layout of in/out:
 * rbx rbp rdi rsi r12 r13 r14 r15, then xmm6..xmm15 (two words each).
 *
 * uintptr_t weft_test_regs_switch(void **save_sp, void *to_sp, void *value,
 *                                 const uint64_t *in, uint64_t *out)
 *   rcx, rdx, r8, r9, [rsp+40] */
    .text
    .globl weft_test_regs_switch
    .def weft_test_regs_switch; .scl 2; .type 32; .endef
weft_test_regs_switch:
    movq 40(%rsp), %rax  /* out */
    pushq %rbp
    pushq %rbx
    pushq %rdi
    pushq %rsi
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    pushq %rax           /* out at 192(%rsp) after the next sub */
    /* 9 pushes: rsp = entry - 72, 16-aligned. Keep xmm6-15 (160) and a
     * 32-byte home area for the call: 192 bytes. */
    subq $192, %rsp
    movups %xmm6, 32(%rsp)
    movups %xmm7, 48(%rsp)
    movups %xmm8, 64(%rsp)
    movups %xmm9, 80(%rsp)
    movups %xmm10, 96(%rsp)
    movups %xmm11, 112(%rsp)
    movups %xmm12, 128(%rsp)
    movups %xmm13, 144(%rsp)
    movups %xmm14, 160(%rsp)
    movups %xmm15, 176(%rsp)
    movq 0(%r9), %rbx
    movq 8(%r9), %rbp
    movq 16(%r9), %rdi
    movq 24(%r9), %rsi
    movq 32(%r9), %r12
    movq 40(%r9), %r13
    movq 48(%r9), %r14
    movq 56(%r9), %r15
    movups 64(%r9), %xmm6
    movups 80(%r9), %xmm7
    movups 96(%r9), %xmm8
    movups 112(%r9), %xmm9
    movups 128(%r9), %xmm10
    movups 144(%r9), %xmm11
    movups 160(%r9), %xmm12
    movups 176(%r9), %xmm13
    movups 192(%r9), %xmm14
    movups 208(%r9), %xmm15
    call weft__switch
    movq 192(%rsp), %rcx
    movq %rbx, 0(%rcx)
    movq %rbp, 8(%rcx)
    movq %rdi, 16(%rcx)
    movq %rsi, 24(%rcx)
    movq %r12, 32(%rcx)
    movq %r13, 40(%rcx)
    movq %r14, 48(%rcx)
    movq %r15, 56(%rcx)
    movups %xmm6, 64(%rcx)
    movups %xmm7, 80(%rcx)
    movups %xmm8, 96(%rcx)
    movups %xmm9, 112(%rcx)
    movups %xmm10, 128(%rcx)
    movups %xmm11, 144(%rcx)
    movups %xmm12, 160(%rcx)
    movups %xmm13, 176(%rcx)
    movups %xmm14, 192(%rcx)
    movups %xmm15, 208(%rcx)
    movups 32(%rsp), %xmm6
    movups 48(%rsp), %xmm7
    movups 64(%rsp), %xmm8
    movups 80(%rsp), %xmm9
    movups 96(%rsp), %xmm10
    movups 112(%rsp), %xmm11
    movups 128(%rsp), %xmm12
    movups 144(%rsp), %xmm13
    movups 160(%rsp), %xmm14
    movups 176(%rsp), %xmm15
    addq $200, %rsp      /* the area and the saved out */
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rsi
    popq %rdi
    popq %rbx
    popq %rbp
    ret
