/* The test suites' one harness. With Criterion (the native default) this is
 * <criterion/criterion.h>; with WEFT_TEST_PORTABLE (no Criterion: mingw-w64
 * under wine, AArch64 under qemu, TSan builds) it implements the subset of
 * Criterion the suites use, so the suites keep their macros:
 *
 *   TestSuite(suite, .init = f, .fini = f, .timeout = seconds)
 *   Test(suite, name, .init = f, .fini = f, .timeout = seconds, .disabled = 1)
 *   cr_assert[_not|_null|_not_null](x[, fmt, ...])
 *   cr_assert_{eq,neq,lt,leq,gt,geq}(a, b[, fmt, ...])
 *   cr_assert_str_{eq,neq}(a, b[, fmt, ...])
 *   cr_skip_test(fmt, ...), cr_log_info(fmt, ...)
 *
 * The runner (runner.c) runs each test in a child process of its own: see
 * there. A test's options override its suite's. */
#ifndef WEFT_TEST_HARNESS_H
#define WEFT_TEST_HARNESS_H

#if !defined(WEFT_TEST_PORTABLE) || !WEFT_TEST_PORTABLE
#include <criterion/criterion.h>
#else

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* weft__pad keeps the initialiser valid when a macro passes no options. */
struct weft__test_opts {
    int weft__pad;
    void (*init)(void);
    void (*fini)(void);
    double timeout; /* seconds; 0: none */
    int disabled;
    const char *description;
};

struct weft__test {
    const char *suite, *name;
    void (*fn)(void);
    struct weft__test_opts opts;
    struct weft__test *next;
};

struct weft__suite {
    const char *name;
    struct weft__test_opts opts;
    struct weft__suite *next;
};

/* mingw-w64 checks "printf" formats against Microsoft's printf (no %zu);
 * the suites are built with its C99 stdio (__USE_MINGW_ANSI_STDIO), whose
 * format archetype its headers name. */
#ifdef __MINGW_PRINTF_FORMAT
#define WEFT__PRINTF_FORMAT __MINGW_PRINTF_FORMAT
#else
#define WEFT__PRINTF_FORMAT printf
#endif

void weft__test_register(struct weft__test *t);
void weft__suite_register(struct weft__suite *s);
_Noreturn void weft__test_fail(const char *file, int line, const char *expr, const char *fmt, ...)
    __attribute__((format(WEFT__PRINTF_FORMAT, 4, 5)));
_Noreturn void weft__test_skip(const char *fmt, ...)
    __attribute__((format(WEFT__PRINTF_FORMAT, 1, 2)));
void weft__test_log(const char *fmt, ...) __attribute__((format(WEFT__PRINTF_FORMAT, 1, 2)));

#define Test(suite, name, ...)                                                                     \
    static void weft__t_##suite##_##name(void);                                                    \
    static struct weft__test weft__reg_##suite##_##name = {                                        \
        #suite, #name, weft__t_##suite##_##name, {.weft__pad = 0, __VA_ARGS__}, NULL};             \
    __attribute__((constructor)) static void weft__ctor_##suite##_##name(void)                     \
    {                                                                                              \
        weft__test_register(&weft__reg_##suite##_##name);                                          \
    }                                                                                              \
    static void weft__t_##suite##_##name(void)

#define TestSuite(suite, ...)                                                                      \
    static struct weft__suite weft__suite_##suite = {#suite, {.weft__pad = 0, __VA_ARGS__}, NULL}; \
    __attribute__((constructor)) static void weft__suite_ctor_##suite(void)                        \
    {                                                                                              \
        weft__suite_register(&weft__suite_##suite);                                                \
    }                                                                                              \
    struct weft__suite_##suite##_semicolon

/* The message, when given, starts with a string literal: " " keeps the
 * format non-empty when it is not. */
#define WEFT__ASSERT(cond, expr, ...)                                                              \
    do {                                                                                           \
        if (!(cond))                                                                               \
            weft__test_fail(__FILE__, __LINE__, expr, " " __VA_ARGS__);                            \
    } while (0)

#define cr_assert(c, ...) WEFT__ASSERT((c), #c, __VA_ARGS__)
#define cr_assert_not(c, ...) WEFT__ASSERT(!(c), "!(" #c ")", __VA_ARGS__)
#define cr_assert_null(p, ...) WEFT__ASSERT((p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_assert_not_null(p, ...) WEFT__ASSERT((p) != NULL, #p " != NULL", __VA_ARGS__)
#define cr_assert_eq(a, b, ...) WEFT__ASSERT((a) == (b), #a " == " #b, __VA_ARGS__)
#define cr_assert_neq(a, b, ...) WEFT__ASSERT((a) != (b), #a " != " #b, __VA_ARGS__)
#define cr_assert_lt(a, b, ...) WEFT__ASSERT((a) < (b), #a " < " #b, __VA_ARGS__)
#define cr_assert_leq(a, b, ...) WEFT__ASSERT((a) <= (b), #a " <= " #b, __VA_ARGS__)
#define cr_assert_gt(a, b, ...) WEFT__ASSERT((a) > (b), #a " > " #b, __VA_ARGS__)
#define cr_assert_geq(a, b, ...) WEFT__ASSERT((a) >= (b), #a " >= " #b, __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...)                                                                \
    WEFT__ASSERT(weft__str_cmp((a), (b)) == 0, #a " equals " #b, __VA_ARGS__)
#define cr_assert_str_neq(a, b, ...)                                                               \
    WEFT__ASSERT(weft__str_cmp((a), (b)) != 0, #a " differs from " #b, __VA_ARGS__)

#define cr_skip_test(...) weft__test_skip(__VA_ARGS__)
#define cr_log_info(...) weft__test_log(__VA_ARGS__)

/* strcmp, with NULL ordered first instead of crashing. */
static inline int weft__str_cmp(const char *a, const char *b)
{
    if (!a || !b)
        return a == b ? 0 : (a ? 1 : -1);
    return strcmp(a, b);
}

#if defined(_WIN32)
#include <windows.h>
/* CreateProcessA(self, cmd, ..., inherit handles, si, pi), tried again up to
 * five times: wine's CreateProcess now and then fails with
 * ERROR_INTERNAL_ERROR (1359) while many processes start at once, and a
 * test that never started has not failed. Returns its last result;
 * GetLastError() holds the last error. */
BOOL weft__test_create_process(const char *self, char *cmd, STARTUPINFOA *si,
                               PROCESS_INFORMATION *pi);
#endif

#endif /* WEFT_TEST_PORTABLE */
#endif
