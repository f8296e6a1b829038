/* Do-nothing decoder slots for the test plugins that the loader must refuse before any slot runs. */
#ifndef SPECD_TEST_STUB_SLOTS_H
#define SPECD_TEST_STUB_SLOTS_H

#include <specd/decoder.h>

/* Not every plugin uses every stub (null_slot leaves plan out). */
#if defined(__GNUC__)
#define STUB_UNUSED __attribute__((unused))
#else
#define STUB_UNUSED
#endif

STUB_UNUSED static int stub_create(const specd_host_api *api, specd_host *h, const specd_model_info *model,
                                   const char *options_json, void **instance) {
  (void)api;
  (void)h;
  (void)model;
  (void)options_json;
  *instance = NULL;
  return SPECD_OK;
}

STUB_UNUSED static void stub_destroy(void *instance) { (void)instance; }

STUB_UNUSED static int stub_begin(void *instance, specd_seq *s) {
  (void)instance;
  (void)s;
  return SPECD_OK;
}

STUB_UNUSED static int stub_plan(void *instance, specd_seq *s, specd_batch *b) {
  (void)instance;
  (void)s;
  (void)b;
  return SPECD_E_UNSUPPORTED;
}

STUB_UNUSED static int stub_accept(void *instance, specd_seq *s, const specd_outputs *o) {
  (void)instance;
  (void)s;
  (void)o;
  return SPECD_E_UNSUPPORTED;
}

STUB_UNUSED static void stub_end(void *instance, specd_seq *s) {
  (void)instance;
  (void)s;
}

#endif /* SPECD_TEST_STUB_SLOTS_H */
