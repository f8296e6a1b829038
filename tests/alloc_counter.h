// Counts heap allocations in a test binary that links tests/alloc_counter.cpp (replaces operator new).
#pragma once

namespace specd::test {

// Calls to operator new since the program started.
long allocation_count();

}  // namespace specd::test
