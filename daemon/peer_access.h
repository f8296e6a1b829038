// Peer access: who is at the other end of a client socket, and whether [access] admits them.
#pragma once

#include "daemon/config.h"

#include <cstdint>
#include <string>
#include <vector>

namespace specd::daemon {

struct PeerCred {
  int32_t uid = -1;
  int32_t gid = -1;  // primary group
  int32_t pid = -1;
  std::vector<uint32_t> groups;  // supplementary groups (SO_PEERGROUPS); empty when unknown
};

// The credentials of the peer of the connected Unix socket fd: uid, gid and pid from SO_PEERCRED
// (left -1 when that fails) and the supplementary groups from SO_PEERGROUPS (Linux >= 4.13); where
// SO_PEERGROUPS is unavailable groups stays empty and a warning is logged once. Never fails.
PeerCred read_peer_cred(int fd);

// True when cfg's [access] lists admit p: both lists empty, p's uid in allow_uids, or its primary
// or a supplementary group in allow_gids. No errors.
bool peer_allowed(const Config& cfg, const PeerCred& p);

// Why p was refused, for the client and the log: its uid and groups against the lists. No errors.
std::string refusal_reason(const PeerCred& p);

}  // namespace specd::daemon
