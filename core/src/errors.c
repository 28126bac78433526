/* Error strings and names, generated from the X-macro lists in bftnet.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

BFTNET_API const char *bftnet_strerror(int err) {
  switch (err) {
  case 0:
    return "success";
#define BFTNET_XX_(name, msg)                                                                      \
  case BFTNET_E##name:                                                                             \
    return msg;
    BFTNET_ERRNO_MAP(BFTNET_XX_)
#undef BFTNET_XX_
  default:
    break;
  }
  if (err < 0 && err > -4096) return strerror(-err);
  return "unknown error";
}

BFTNET_API const char *bftnet_err_name(int err) {
  switch (err) {
  case 0:
    return "OK";
#define BFTNET_XX_(name, msg)                                                                      \
  case BFTNET_E##name:                                                                             \
    return "BFTNET_E" #name;
    BFTNET_ERRNO_MAP(BFTNET_XX_)
#undef BFTNET_XX_
  default:
    break;
  }
  if (err < 0 && err > -4096) {
    const char *n = strerrorname_np(-err);
    return n ? n : "ERRNO";
  }
  return "UNKNOWN";
}

BFTNET_API const char *bftnet_reason_str(bftnet_reason_t reason) {
  switch (reason) {
#define BFTNET_XX_(name, msg)                                                                      \
  case BFTNET_REASON_##name:                                                                       \
    return msg;
    BFTNET_REASON_MAP(BFTNET_XX_)
#undef BFTNET_XX_
  default:
    return "unknown reason";
  }
}

BFTNET_API const char *bftnet_counter_name(bftnet_counter_id_t id) {
  switch (id) {
#define BFTNET_XX_(name, str)                                                                      \
  case BFTNET_COUNTER_##name:                                                                      \
    return str;
    BFTNET_COUNTER_MAP(BFTNET_XX_)
#undef BFTNET_XX_
  default:
    return "unknown";
  }
}

void bn_assert_fail(const char *expr, const char *file, int line) {
  fprintf(stderr, "bftnet: internal invariant failed: %s (%s:%d)\n", expr, file, line);
  fflush(stderr);
  abort();
}
