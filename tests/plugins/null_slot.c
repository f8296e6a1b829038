/* null_slot: a plugin whose required plan slot is NULL, which the loader must refuse. */
#include "stub_slots.h"

static const specd_decoder null_slot_decoder = {
    SPECD_DECODER_HEAD,
    "null_slot", "1.0", "leaves plan NULL (specd test plugin)",
    stub_create, stub_destroy, stub_begin, NULL, stub_accept, stub_end,
    NULL, 0, 0, NULL, /* ABI 1.2: no options described */
};

const specd_decoder *specd_decoder_entry(uint32_t host_abi_major, uint32_t host_abi_minor) {
  (void)host_abi_major;
  (void)host_abi_minor;
  return &null_slot_decoder;
}
