/* json.c — the membership file: {"members": [{"id": "r1", "addrs": [...]}, ...]}.
 * jansson parses (duplicate keys rejected), a strict schema check names the
 * offending key or member, then mb_table_build validates the values. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "mb_internal.h"

/* What the schema check hands to mb_table_build: the members, and room for
 * BFTNET_MAX_ADDRS string pointers each (they point into the jansson tree). */
typedef struct mb_json_members {
  bftnet_member_t *members;
  const char *(*addrs)[BFTNET_MAX_ADDRS];
  size_t n;
} mb_json_members_t;

static void mb_json_members_free(mb_json_members_t *jm) {
  free(jm->members);
  free(jm->addrs);
  memset(jm, 0, sizeof(*jm));
}

/* A malformed document: jansson's position and message (made printable: it
 * may quote the input). */
static int mb_json_syntax_error(const json_error_t *jerr, char *errbuf, size_t errcap) {
  char text[JSON_ERROR_TEXT_LENGTH];
  size_t k = 0;
  for (; k + 1 < sizeof(text) && jerr->text[k]; k++) {
    unsigned char ch = (unsigned char)jerr->text[k];
    text[k] = (ch >= 0x20 && ch <= 0x7e) ? (char)ch : '?';
  }
  text[k] = '\0';
  mb_errf(errbuf, errcap, "line %d, column %d: %s", jerr->line, jerr->column, text);
  return BFTNET_EINVAL;
}

/* Member idx (1-based): an object with exactly "id" (string) and "addrs"
 * (array of strings). Fills dst and its address slots. */
static int mb_json_member(size_t idx, json_t *obj, bftnet_member_t *dst, const char **slots,
                          char *errbuf, size_t errcap) {
  char show[MB_SHOW_BUF];
  if (!json_is_object(obj)) {
    mb_errf(errbuf, errcap, "member %zu must be an object", idx);
    return BFTNET_EINVAL;
  }
  const char *key;
  json_t *val;
  json_object_foreach(obj, key, val) {
    if (strcmp(key, "id") != 0 && strcmp(key, "addrs") != 0) {
      mb_errf(errbuf, errcap, "member %zu: unknown key \"%s\"", idx,
              mb_show(key, strlen(key), show));
      return BFTNET_EINVAL;
    }
  }
  json_t *id = json_object_get(obj, "id");
  json_t *addrs = json_object_get(obj, "addrs");
  if (!id) {
    mb_errf(errbuf, errcap, "member %zu: missing key \"id\"", idx);
    return BFTNET_EINVAL;
  }
  if (!json_is_string(id)) {
    mb_errf(errbuf, errcap, "member %zu: \"id\" must be a string", idx);
    return BFTNET_EINVAL;
  }
  if (!addrs) {
    mb_errf(errbuf, errcap, "member %zu: missing key \"addrs\"", idx);
    return BFTNET_EINVAL;
  }
  bool ok = json_is_array(addrs);
  for (size_t j = 0; ok && j < json_array_size(addrs); j++)
    ok = json_is_string(json_array_get(addrs, j));
  if (!ok) {
    mb_errf(errbuf, errcap, "member %zu: \"addrs\" must be an array of strings", idx);
    return BFTNET_EINVAL;
  }
  size_t na = json_array_size(addrs);
  /* A count outside 1..BFTNET_MAX_ADDRS is passed on as is: mb_table_build
   * rejects it (naming the member) before it reads any address. */
  for (size_t j = 0; j < na && mb_naddrs_ok(na); j++)
    slots[j] = json_string_value(json_array_get(addrs, j));
  dst->node_id = json_string_value(id);
  dst->addrs = slots;
  dst->naddrs = na;
  return 0;
}

/* The top level: an object with exactly "members" (an array of members). */
static int mb_json_schema(json_t *root, mb_json_members_t *jm, char *errbuf, size_t errcap) {
  char show[MB_SHOW_BUF];
  if (!json_is_object(root)) {
    mb_errf(errbuf, errcap, "top level must be an object");
    return BFTNET_EINVAL;
  }
  const char *key;
  json_t *val;
  json_object_foreach(root, key, val) {
    if (strcmp(key, "members") != 0) {
      mb_errf(errbuf, errcap, "unknown key \"%s\" at top level", mb_show(key, strlen(key), show));
      return BFTNET_EINVAL;
    }
  }
  json_t *members = json_object_get(root, "members");
  if (!members) {
    mb_errf(errbuf, errcap, "missing key \"members\"");
    return BFTNET_EINVAL;
  }
  if (!json_is_array(members)) {
    mb_errf(errbuf, errcap, "\"members\" must be an array");
    return BFTNET_EINVAL;
  }
  size_t n = json_array_size(members);
  if (n > BFTNET_MAX_MEMBERS) { /* before allocating for them */
    mb_errf(errbuf, errcap, "%zu members (at most %u)", n, BFTNET_MAX_MEMBERS);
    return BFTNET_EINVAL;
  }
  if (n == 0) return 0;
  jm->members = calloc(n, sizeof(*jm->members));
  jm->addrs = calloc(n, sizeof(*jm->addrs));
  if (!jm->members || !jm->addrs) {
    mb_errf(errbuf, errcap, "out of memory");
    return BFTNET_ENOMEM;
  }
  jm->n = n;
  for (size_t i = 0; i < n; i++) {
    int rc = mb_json_member(i + 1, json_array_get(members, i), &jm->members[i], jm->addrs[i],
                            errbuf, errcap);
    if (rc) return rc;
  }
  return 0;
}

int mb_table_from_json(mb_table_t *out, const char *json, size_t len, char *errbuf, size_t errcap) {
  int rc = mb__table_begin(out, json != NULL, "no JSON text", errbuf, errcap);
  if (rc) return rc;
  if (len > MB_FILE_MAX) {
    mb_errf(errbuf, errcap, "%zu bytes of JSON (at most %u)", len, MB_FILE_MAX);
    return BFTNET_ETOOBIG;
  }
  /* Zeroed: jansson sets neither text nor code when it cannot allocate its
   * lexer. (Its lexer may also report a later allocation failure as a syntax
   * error, or drop a byte: akheron/jansson#362; docs/MEMBERSHIP.md.) */
  json_error_t jerr;
  memset(&jerr, 0, sizeof(jerr));
  json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!root && (json_error_code(&jerr) == json_error_out_of_memory || jerr.text[0] == '\0')) {
    mb_errf(errbuf, errcap, "out of memory");
    return BFTNET_ENOMEM;
  }
  if (!root) return mb_json_syntax_error(&jerr, errbuf, errcap);
  mb_json_members_t jm = {0};
  rc = mb_json_schema(root, &jm, errbuf, errcap);
  if (!rc) rc = mb_table_build(out, jm.members, jm.n, errbuf, errcap);
  mb_json_members_free(&jm);
  json_decref(root);
  return rc;
}

/* ------------------------------------------------------------ the file */

/* Reads all of fd, refusing more than MB_FILE_MAX bytes (checked with fstat
 * first, and again while reading: the file may grow, or st_size may lie as
 * it does for /proc files). */
static int mb_read_fd(int fd, char **out, size_t *outlen) {
  struct stat st;
  if (fstat(fd, &st) != 0) return -errno;
  if (S_ISDIR(st.st_mode)) return -EISDIR;
  if (st.st_size < 0 || (uint64_t)st.st_size > MB_FILE_MAX) return BFTNET_ETOOBIG;
  size_t cap = (size_t)st.st_size + 1, len = 0; /* +1: sees EOF without growing */
  char *buf = malloc(cap);
  if (!buf) return BFTNET_ENOMEM;
  for (;;) {
    if (len == cap) {
      size_t ncap = BN_MIN(cap * 2, (size_t)MB_FILE_MAX + 1);
      char *nb = ncap > cap ? realloc(buf, ncap) : NULL;
      if (!nb) {
        free(buf);
        return ncap > cap ? BFTNET_ENOMEM : BFTNET_ETOOBIG;
      }
      buf = nb;
      cap = ncap;
    }
    ssize_t r = read(fd, buf + len, cap - len);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int err = -errno;
      free(buf);
      return err;
    }
    if (r == 0) break;
    len += (size_t)r;
  }
  if (len > MB_FILE_MAX) {
    free(buf);
    return BFTNET_ETOOBIG;
  }
  *out = buf;
  *outlen = len;
  return 0;
}

int mb_table_load_file(mb_table_t *out, const char *path, char *errbuf, size_t errcap) {
  int rc = mb__table_begin(out, path != NULL, "no path", errbuf, errcap);
  if (rc) return rc;
  char show[MB_SHOW_BUF];
  mb_show(path, strlen(path), show);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = -errno;
    mb_errf(errbuf, errcap, "%s: %s", show, strerror(-err));
    return err;
  }
  char *buf = NULL;
  size_t len = 0;
  rc = mb_read_fd(fd, &buf, &len);
  close(fd);
  if (rc == BFTNET_ETOOBIG) {
    mb_errf(errbuf, errcap, "%s: larger than %u bytes", show, MB_FILE_MAX);
    return rc;
  }
  if (rc) {
    mb_errf(errbuf, errcap, "%s: %s", show, rc == BFTNET_ENOMEM ? "out of memory" : strerror(-rc));
    return rc;
  }
  char why[320];
  rc = mb_table_from_json(out, buf, len, why, sizeof(why));
  free(buf);
  if (rc) mb_errf(errbuf, errcap, "%s: %s", show, why);
  return rc;
}
