/* An incremental parser for Redis's request protocol (RESP): multibulk
 * commands (*N\r\n$len\r\narg\r\n...) and inline commands (PING\r\n,
 * SET k "v w"\r\n). Pure C, no I/O, no allocation.
 *
 * The caller keeps the bytes received from the peer in one buffer and calls
 * resp_parse() with everything not consumed yet. The parser remembers how
 * far it got inside an incomplete command, so a command arriving in many
 * small pieces costs linear time; the caller may move the unconsumed bytes
 * to the front of its buffer between calls (state holds offsets, not
 * pointers). A complete command's arguments are slices into the buffer
 * (inline arguments with quotes are unescaped in place, so the buffer is
 * not const). They stay valid until the caller reuses those bytes.
 */
#ifndef RESP_PARSER_H
#define RESP_PARSER_H

#include <stddef.h>
#include <stdint.h>

/* One argument: bytes in the caller's buffer (binary-safe, not terminated). */
typedef struct resp_arg {
    const char *p;
    uint32_t n;
    uint32_t off_; /* private: offset from the command's first byte while parsing */
} resp_arg;

/* Limits; a command over one of them is a protocol error. */
typedef struct resp_limits {
    uint32_t max_args;   /* arguments per command (at most the argv capacity) */
    uint32_t max_bulk;   /* bytes in one bulk argument */
    uint32_t max_inline; /* bytes in one inline command line */
} resp_limits;

#define RESP_DEFAULT_MAX_BULK (512u * 1024u)
#define RESP_DEFAULT_MAX_INLINE (64u * 1024u)

/* Results of resp_parse(): a positive byte count is a complete command. */
enum {
    RESP_INCOMPLETE = 0,   /* need more bytes */
    RESP_E_MBULK_LEN = -1, /* bad or too large "*N" */
    RESP_E_BULK_LEN = -2,  /* bad or too large "$len" */
    RESP_E_EXPECTED_DOLLAR = -3,
    RESP_E_BULK_CRLF = -4, /* a bulk not followed by CRLF */
    RESP_E_INLINE_TOO_BIG = -5,
    RESP_E_QUOTES = -6, /* unbalanced quotes in an inline command */
    RESP_E_TOO_MANY_ARGS = -7,
};

/* Parser state for one connection. */
typedef struct resp_parser {
    resp_limits lim;
    resp_arg *argv; /* caller's array of argv_cap entries */
    uint32_t argv_cap;
    /* Private resume state (offsets from the start of the current command). */
    uint32_t phase_;
    uint32_t argc_;  /* arguments announced by *N */
    uint32_t nargs_; /* arguments complete so far */
    uint32_t pos_;   /* bytes of the command parsed so far */
    uint32_t bulk_;  /* length of the bulk being read */
    uint32_t scan_;  /* inline: bytes already searched for LF */
} resp_parser;

/* Set up p over the caller's argv array (argv_cap entries). lim may be NULL
 * for the defaults (max_args = argv_cap). */
void resp_parser_init(resp_parser *p, resp_arg *argv, uint32_t argv_cap, const resp_limits *lim);

/* Parse the next command from buf[0..len). Returns:
 *   > 0  a complete command of that many bytes: *argc arguments in p->argv
 *        (argc may be 0 for an empty command, which gets no reply);
 *        the next command starts at buf + result;
 *   0    (RESP_INCOMPLETE) not complete yet: call again with the same bytes
 *        (possibly moved) followed by more;
 *   < 0  a protocol error (RESP_E_*): reply resp_strerror() and close.
 * buf must start where the previous complete command ended. */
long resp_parse(resp_parser *p, char *buf, size_t len, uint32_t *argc);

/* The RESP error line for a RESP_E_* code, with "-" and CRLF, e.g.
 * "-ERR Protocol error: invalid bulk length\r\n". */
const char *resp_strerror(long err);

#endif
