// RequestTable: lookup, removal and cancel bookkeeping for in-flight requests.
#include "clients/request_table.h"

namespace specd::clients {

Pending* RequestTable::find(uint64_t id) {
  const auto it = table_.find(id);
  return it == table_.end() ? nullptr : &it->second;
}

std::optional<Pending> RequestTable::take(uint64_t id) {
  auto node = table_.extract(id);
  if (node.empty()) return std::nullopt;
  return std::move(node.mapped());
}

std::vector<Pending> RequestTable::take_all() {
  std::vector<Pending> out;
  out.reserve(table_.size());
  for (auto& [id, p] : table_) out.push_back(std::move(p));
  table_.clear();
  return out;
}

std::vector<uint64_t> RequestTable::cancels_to_send() {
  std::vector<uint64_t> ids;
  for (auto& [id, p] : table_) {
    if (p.gen && !p.gen->cancel_sent_ && p.gen->cancel_requested_.load()) {
      p.gen->cancel_sent_ = true;
      ids.push_back(id);
    }
  }
  return ids;
}

}  // namespace specd::clients
