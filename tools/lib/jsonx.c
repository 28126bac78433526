/* jsonx.c — see jsonx.h. */
#include "jsonx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

json_t *jsonx_u64(uint64_t v) {
  return json_integer((json_int_t)(v > INT64_MAX ? INT64_MAX : v));
}

int jsonx_write_atomic(json_t *doc, const char *path, size_t flags) {
  size_t len = strlen(path) + sizeof ".tmp";
  char *tmp = malloc(len);
  if (!tmp) return -ENOMEM;
  snprintf(tmp, len, "%s.tmp", path);
  int rc = 0;
  errno = 0;
  if (json_dump_file(doc, tmp, flags) != 0)
    rc = errno ? -errno : -EIO;
  else if (rename(tmp, path) != 0)
    rc = -errno;
  if (rc) unlink(tmp);
  free(tmp);
  return rc;
}
