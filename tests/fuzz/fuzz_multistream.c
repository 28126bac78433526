/* fuzz_multistream.c — ms_next over arbitrary bytes: accepted messages are
 * printable, bounded, newline-terminated and re-encode to the same bytes. */
#include <stdlib.h>

#include "proto.h"

#define FZ_CHECK(c) ((c) ? (void)0 : abort()) /* a violated property */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fz_check_message(const uint8_t *p, int used, const char *text, size_t len) {
  FZ_CHECK(len > 0 && len + 1 <= BN_MS_MAX_MSG);
  FZ_CHECK((const uint8_t *)text > p && (const uint8_t *)text + len + 1 == p + used);
  FZ_CHECK(text[len] == '\n');
  char copy[BN_MS_MAX_MSG + 1];
  for (size_t i = 0; i < len; i++)
    FZ_CHECK(text[i] >= 0x20 && text[i] <= 0x7e);
  memcpy(copy, text, len);
  copy[len] = '\0';
  FZ_CHECK(ms_eq(text, len, copy));
  bn_buf_t b;
  bn_buf_init(&b);
  FZ_CHECK(ms_append(&b, copy) == 0);
  FZ_CHECK(bn_buf_unread(&b) == (size_t)used);
  FZ_CHECK(memcmp(bn_buf_head(&b), p, (size_t)used) == 0);
  bn_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *p = data;
  size_t n = size;
  for (;;) {
    const char *text;
    size_t len;
    int rc = ms_next(p, n, &text, &len);
    if (rc < 0) {
      FZ_CHECK(rc == BFTNET_EPROTO || rc == BFTNET_ETOOBIG);
      break;
    }
    if (rc == 0) break;
    FZ_CHECK((size_t)rc <= n);
    fz_check_message(p, rc, text, len);
    p += rc;
    n -= (size_t)rc;
  }
  /* ms_append on the raw input as text: accepted only if it parses back. */
  char s[BN_MS_MAX_MSG + 8];
  size_t sl = BN_MIN(size, sizeof(s) - 1);
  memcpy(s, data, sl);
  s[sl] = '\0';
  bn_buf_t b;
  bn_buf_init(&b);
  if (ms_append(&b, s) == 0) {
    const char *text;
    size_t len;
    FZ_CHECK(ms_next(bn_buf_head(&b), bn_buf_unread(&b), &text, &len) == (int)bn_buf_unread(&b));
    FZ_CHECK(ms_eq(text, len, s));
  }
  bn_buf_free(&b);
  return 0;
}
