// Generation::request_cancel, the one cross-thread door of the client library.
#include "clients/generation.h"

#include "clients/connection.h"

namespace specd::clients {

void Generation::request_cancel() {
  // The flag is stored before the eventfd write, so the poll that the write wakes sees it.
  cancel_requested_.store(true);
  if (wake_) wake_->wake();
}

}  // namespace specd::clients
