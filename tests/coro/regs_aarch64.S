/* Test helper (AArch64): loads every callee-saved register from in[],
 * calls weft__switch(save_sp, to_sp, value) directly, stores the registers
 * into out[] and returns the switch's result. Layout of in/out:
 * x19..x29 (11 words), then d8..d15.
 *
 * uintptr_t weft_test_regs_switch(void **save_sp, void *to_sp, void *value,
 *                                 const uint64_t *in, uint64_t *out)
 *   x0, x1, x2, x3, x4 */
    .text
    .globl weft_test_regs_switch
    .type weft_test_regs_switch, %function
weft_test_regs_switch:
    sub sp, sp, #176
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
    str x4, [sp, #160]
    ldp x19, x20, [x3, #0]
    ldp x21, x22, [x3, #16]
    ldp x23, x24, [x3, #32]
    ldp x25, x26, [x3, #48]
    ldp x27, x28, [x3, #64]
    ldr x29, [x3, #80]
    ldp d8, d9, [x3, #88]
    ldp d10, d11, [x3, #104]
    ldp d12, d13, [x3, #120]
    ldp d14, d15, [x3, #136]
    bl weft__switch
    ldr x9, [sp, #160]
    stp x19, x20, [x9, #0]
    stp x21, x22, [x9, #16]
    stp x23, x24, [x9, #32]
    stp x25, x26, [x9, #48]
    stp x27, x28, [x9, #64]
    str x29, [x9, #80]
    stp d8, d9, [x9, #88]
    stp d10, d11, [x9, #104]
    stp d12, d13, [x9, #120]
    stp d14, d15, [x9, #136]
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
    ret
    .size weft_test_regs_switch, . - weft_test_regs_switch
    .section .note.GNU-stack, "", %progbits
