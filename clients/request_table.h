// RequestTable: a connection's requests in flight, by request id, each a Generation or a blocking call's reply slot.
#pragma once

#include "clients/generation.h"
#include "kernels/result.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

namespace specd::wire {
struct Envelope;
}

namespace specd::clients {

// Where a blocking call (status, list runs) waits for its reply; lives on that call's stack.
struct Waiter {
  int expected_body = 0;                                 // the wire::Body that answers it
  std::function<void(const wire::Envelope&)> on_reply;   // decodes the expected reply
  bool done = false;
  std::optional<Error> error;
};

struct Pending {
  std::unique_ptr<Generation> gen;  // a generation, owned until its on_done returns
  Waiter* waiter = nullptr;         // or a blocking call
};

class RequestTable {
 public:
  // Ids are unique per connection; 0 is the handshake's.
  uint64_t next_id() { return next_id_++; }
  void add(uint64_t id, Pending p) { table_.emplace(id, std::move(p)); }
  Pending* find(uint64_t id);
  // Remove and return a request (so callbacks run with the table already consistent).
  std::optional<Pending> take(uint64_t id);
  // Remove and return every request, oldest first.
  std::vector<Pending> take_all();
  // Generations whose cancel was requested and not yet sent; marks them sent.
  std::vector<uint64_t> cancels_to_send();
  bool empty() const { return table_.empty(); }

 private:
  std::map<uint64_t, Pending> table_;
  uint64_t next_id_ = 1;
};

}  // namespace specd::clients
