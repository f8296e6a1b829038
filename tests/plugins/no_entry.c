/* no_entry: a plugin whose entry point is misspelt, so it exports no specd_decoder_entry; and a
 * constructor, which the loader must refuse before running (it creates $SPECD_TEST_CTOR_MARK). */
#include "stub_slots.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((constructor)) static void no_entry_constructor(void) {
  const char *mark = getenv("SPECD_TEST_CTOR_MARK");
  if (mark) {
    const int fd = open(mark, O_WRONLY | O_CREAT, 0600);
    if (fd >= 0) close(fd);
  }
}

static const specd_decoder no_entry_decoder = {
    SPECD_DECODER_HEAD,
    "no_entry", "1.0", "exports the wrong symbol (specd test plugin)",
    stub_create, stub_destroy, stub_begin, stub_plan, stub_accept, stub_end,
    NULL, 0, 0, NULL, /* ABI 1.2: no options described */
};

SPECD_EXPORT const specd_decoder *specd_decoder_entri(uint32_t host_abi_major, uint32_t host_abi_minor);

const specd_decoder *specd_decoder_entri(uint32_t host_abi_major, uint32_t host_abi_minor) {
  (void)host_abi_major;
  (void)host_abi_minor;
  return &no_entry_decoder;
}
