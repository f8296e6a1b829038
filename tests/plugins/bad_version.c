/* bad_version: a plugin claiming decoder ABI 99.0, which the loader must refuse with SPECD_E_VERSION. */
#include "stub_slots.h"

static const specd_decoder bad_version_decoder = {
    sizeof(specd_decoder), 99, 0, (uint32_t)sizeof(void *),
    "bad_version", "1.0", "built for a future ABI major (specd test plugin)",
    stub_create, stub_destroy, stub_begin, stub_plan, stub_accept, stub_end,
    NULL, 0, 0, NULL, /* ABI 1.2: no options described */
};

const specd_decoder *specd_decoder_entry(uint32_t host_abi_major, uint32_t host_abi_minor) {
  (void)host_abi_major;
  (void)host_abi_minor;
  return &bad_version_decoder;
}
