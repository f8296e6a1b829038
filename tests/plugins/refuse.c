/* refuse: one source, built once per -DREFUSE_* flag, for the remaining descriptor checks of the loader. */
#include "stub_slots.h"

#if defined(REFUSE_BAD_NAME)
#define NAME "Bad Name!"
#else
#define NAME "refuse"
#endif

#if defined(REFUSE_POINTER_SIZE)
#define POINTER_SIZE 4u /* what a 32-bit build would say */
#else
#define POINTER_SIZE ((uint32_t)sizeof(void *))
#endif

#if defined(REFUSE_SHORT_DESC)
#define STRUCT_SIZE ((uint32_t)offsetof(specd_decoder, name)) /* the head only */
#else
#define STRUCT_SIZE ((uint32_t)sizeof(specd_decoder))
#endif

/* Unused in declines.so, which never hands it out. */
STUB_UNUSED static const specd_decoder refuse_decoder = {
    STRUCT_SIZE, SPECD_DECODER_ABI_MAJOR, SPECD_DECODER_ABI_MINOR, POINTER_SIZE,
    NAME, "1.0", "fails one descriptor check (specd test plugin)",
    stub_create, stub_destroy, stub_begin, stub_plan, stub_accept, stub_end,
    NULL, 0, 0, NULL, /* ABI 1.2: no options described */
};

const specd_decoder *specd_decoder_entry(uint32_t host_abi_major, uint32_t host_abi_minor) {
  (void)host_abi_major;
  (void)host_abi_minor;
#if defined(REFUSE_DECLINE)
  return NULL;
#else
  return &refuse_decoder;
#endif
}
