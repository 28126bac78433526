/* pb_arena.c — a bump allocator that caps what protobuf-c may allocate. */
#include "proto.h"

#define PB_ARENA_ALIGN 16u

static void *pb_arena_alloc(void *data, size_t size) {
  pb_arena_t *a = data;
  size_t left = sizeof(a->mem) - a->used;
  if (size > left) return NULL;
  /* Round up after the check so a huge size cannot wrap around. */
  size_t rounded = (size + PB_ARENA_ALIGN - 1) & ~(size_t)(PB_ARENA_ALIGN - 1);
  if (rounded > left) return NULL;
  void *p = a->mem + a->used;
  a->used += rounded;
  return p;
}

/* Everything is released at once when the arena is re-initialised. */
static void pb_arena_free(void *data, void *ptr) {
  (void)data;
  (void)ptr;
}

void pb_arena_init(pb_arena_t *a) {
  a->alloc.alloc = pb_arena_alloc;
  a->alloc.free = pb_arena_free;
  a->alloc.allocator_data = a;
  a->used = 0;
}

_Static_assert(BN_PB_ARENA_MAX % PB_ARENA_ALIGN == 0, "arena keeps its alignment");
