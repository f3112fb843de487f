/* The coroutine suites' test macros: Criterion where it exists (native
 * builds), and a minimal self-registering runner elsewhere (mingw-w64 under
 * wine, AArch64 under qemu-user, or natively with -DWEFT_CHECK_STANDALONE
 * for valgrind). The same test sources serve both.
 *
 *   TEST(suite, name) { ... }        one test
 *   CHECK(cond)                      fails the test if cond is false
 *   CHECK_EQ(a, b), CHECK_NE(a, b)   integers (printed as long long)
 *   CHECK_PTR_EQ(a, b)               pointers
 *   SKIP(reason)                     ends the test as skipped
 *
 * The standalone runner (check_main.c) runs every test in order, or only
 * those whose "suite/name" contains argv[1]; a failed check prints where
 * and why and exits 1 at once. */
#ifndef WEFT_TEST_CHECK_H
#define WEFT_TEST_CHECK_H

#if !defined(WEFT_CHECK_STANDALONE)
#include <criterion/criterion.h>

#define TEST(suite, name) Test(suite, name, .timeout = 60)
#define CHECK(c) cr_assert((c), "CHECK(%s)", #c)
#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                            \
        cr_assert(check_a_ == check_b_, "CHECK_EQ(%s, %s): %lld != %lld", #a, #b, check_a_,        \
                  check_b_);                                                                       \
    } while (0)
#define CHECK_NE(a, b)                                                                             \
    do {                                                                                           \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                            \
        cr_assert(check_a_ != check_b_, "CHECK_NE(%s, %s): both %lld", #a, #b, check_a_);          \
    } while (0)
#define CHECK_PTR_EQ(a, b)                                                                         \
    do {                                                                                           \
        const void *check_a_ = (a), *check_b_ = (b);                                               \
        cr_assert(check_a_ == check_b_, "CHECK_PTR_EQ(%s, %s): %p != %p", #a, #b, check_a_,        \
                  check_b_);                                                                       \
    } while (0)
#define SKIP(reason) cr_skip_test("%s", reason)

#else /* standalone */
#include <stdio.h>
#include <stdlib.h>

struct check_test {
    const char *suite, *name;
    void (*fn)(void);
    struct check_test *next;
};
void check_register(struct check_test *t);
_Noreturn void check_fail(const char *file, int line, const char *fmt, ...);
void check_skip(const char *reason);

#define TEST(suite, name)                                                                          \
    static void suite##_##name(void);                                                              \
    static struct check_test suite##_##name##_test = {#suite, #name, suite##_##name, NULL};        \
    __attribute__((constructor)) static void suite##_##name##_reg(void)                            \
    {                                                                                              \
        check_register(&suite##_##name##_test);                                                    \
    }                                                                                              \
    static void suite##_##name(void)

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            check_fail(__FILE__, __LINE__, "CHECK(%s)", #c);                                       \
    } while (0)
#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                            \
        if (check_a_ != check_b_)                                                                  \
            check_fail(__FILE__, __LINE__, "CHECK_EQ(%s, %s): %lld != %lld", #a, #b, check_a_,     \
                       check_b_);                                                                  \
    } while (0)
#define CHECK_NE(a, b)                                                                             \
    do {                                                                                           \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                            \
        if (check_a_ == check_b_)                                                                  \
            check_fail(__FILE__, __LINE__, "CHECK_NE(%s, %s): both %lld", #a, #b, check_a_);       \
    } while (0)
#define CHECK_PTR_EQ(a, b)                                                                         \
    do {                                                                                           \
        const void *check_a_ = (a), *check_b_ = (b);                                               \
        if (check_a_ != check_b_)                                                                  \
            check_fail(__FILE__, __LINE__, "CHECK_PTR_EQ(%s, %s): %p != %p", #a, #b, check_a_,     \
                       check_b_);                                                                  \
    } while (0)
#define SKIP(reason)                                                                               \
    do {                                                                                           \
        check_skip(reason);                                                                        \
        return;                                                                                    \
    } while (0)
#endif

#endif
