// The results libspecd-client hands to C callers, and the "boxes" that own what they point at.
//
// A box is a standard-layout struct whose first member is the public struct (specd/client.h) and
// whose other members own the strings and arrays its pointers point at. The public pointer converts
// back to its box (they are pointer-interconvertible), so the *_free functions need no lookup and no
// global table. A box's pointers are set once it is in its final place, and it is never moved after.
#pragma once

#include <specd/client.h>

#include "clients/session.h"

#include <cstdint>
#include <string>
#include <vector>

namespace specd::clients {

// What an empty id array points at: the API promises non-NULL.
inline constexpr int32_t kNoIds[1] = {0};

struct GenResultBox {
  specd_gen_result pub;
  std::vector<int32_t> ids;
  std::string text;
  std::string reason;
  std::vector<int32_t> hist;
};

// Fills b (and its public struct's pointers into b) from a Finished. Throws std::bad_alloc only.
void fill_gen_result(GenResultBox* b, const Finished& f);
// A new status or run list, owned by the caller, freed with free_status / free_runs. Throw
// std::bad_alloc only.
specd_status* make_status(StatusInfo info);
specd_runs* make_runs(RunList list);
// Free what fill_gen_result's heap box, make_status and make_runs made (NULL is ignored). No errors.
void free_gen_result(specd_gen_result* r);
void free_status(specd_status* s);
void free_runs(specd_runs* r);

}  // namespace specd::clients
