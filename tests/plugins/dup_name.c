/* dup_name: a valid plugin that reuses c_plugin's name, so whichever loads second is refused. */
#include "stub_slots.h"

static const specd_decoder dup_name_decoder = {
    SPECD_DECODER_HEAD,
    "c_plugin", "1.0", "same name as c_plugin (specd test plugin)",
    stub_create, stub_destroy, stub_begin, stub_plan, stub_accept, stub_end,
    NULL, 0, 0, NULL, /* ABI 1.2: no options described */
};

const specd_decoder *specd_decoder_entry(uint32_t host_abi_major, uint32_t host_abi_minor) {
  (void)host_abi_major;
  (void)host_abi_minor;
  return &dup_name_decoder;
}
