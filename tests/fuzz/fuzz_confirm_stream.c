/* fuzz_confirm_stream.c — the confirmation stream's reader (mig_seq, a
 * sequence of length-prefixed StreamMigration messages, PROTOCOL.md §11.12)
 * fed arbitrary bytes in arbitrary chunks. Properties: no crash or
 * sanitizer report; the messages and the sticky error do not depend on how
 * the bytes were cut (the same as one feed of everything); every message
 * decoded re-encodes (except a reserved member) and decodes to itself. */
#include <stdlib.h>

#include "mig_core.h"

#define FZ_CHECK(c) ((c) ? (void)0 : abort())
#define FZ_MAX_MSGS 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fz_run {
  mig_msg_t msgs[FZ_MAX_MSGS];
  size_t n;
  int err;
} fz_run_t;

static bool fz_msg_eq(const mig_msg_t *a, const mig_msg_t *b) {
  return a->type == b->type && a->id == b->id && a->from == b->from && a->deny == b->deny &&
         a->has_incarnation == b->has_incarnation && a->incarnation == b->incarnation &&
         a->has_read_offset == b->has_read_offset && a->read_offset == b->read_offset;
}

/* Feeds p[0, n) in chunks whose sizes come from `cuts` (cycled; none: one). */
static void fz_feed(fz_run_t *run, const uint8_t *p, size_t n, const uint8_t *cuts, size_t ncuts) {
  mig_seq_t *r = malloc(sizeof *r);
  FZ_CHECK(r);
  mig_seq_init(r);
  run->n = 0;
  run->err = 0;
  for (size_t i = 0, k = 0; i < n && !run->err;) {
    size_t chunk = ncuts ? 1 + cuts[k++ % ncuts] % 64 : n;
    chunk = chunk > n - i ? n - i : chunk;
    const uint8_t *q = p + i;
    size_t left = chunk;
    mig_msg_t m;
    int rc;
    while ((rc = mig_seq_next(r, &q, &left, &m)) == 1) {
      if (run->n < FZ_MAX_MSGS) run->msgs[run->n++] = m;
      FZ_CHECK(r->len <= sizeof r->buf);
    }
    FZ_CHECK(r->len <= sizeof r->buf);
    if (rc < 0)
      run->err = rc;
    else
      FZ_CHECK(left == 0); /* 0: every byte taken */
    i += chunk;
  }
  free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  size_t ncuts = data[0] % 16;
  if (ncuts + 1 > size) return 0;
  const uint8_t *cuts = data + 1, *p = data + 1 + ncuts;
  size_t n = size - 1 - ncuts;
  static fz_run_t whole, cut;
  fz_feed(&whole, p, n, NULL, 0);
  fz_feed(&cut, p, n, cuts, ncuts);
  FZ_CHECK(whole.n == cut.n && whole.err == cut.err);
  for (size_t i = 0; i < whole.n; i++) {
    FZ_CHECK(fz_msg_eq(&whole.msgs[i], &cut.msgs[i]));
    if (whole.msgs[i].type == MIG_MSG_RESERVED) continue;
    bn_buf_t b;
    bn_buf_init(&b);
    FZ_CHECK(mig_msg_encode(&whole.msgs[i], &b) == 0);
    mig_msg_t again;
    FZ_CHECK(mig_msg_decode(b.data, b.len, &again) == (int)b.len);
    FZ_CHECK(fz_msg_eq(&again, &whole.msgs[i]));
    bn_buf_free(&b);
  }
  return 0;
}
